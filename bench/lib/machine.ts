/**
 * What the machine was and what else ran on it while a benchmark ran: figures from a shared 2-core machine
 * mean little without the other processes' CPU use next to them.
 */
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { round } from './stats';

export interface MachineFacts {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  loadAverage: [number, number, number];
}

export function machineFacts(): MachineFacts {
  const [l1, l5, l15] = os.loadavg();
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: [round(l1 ?? 0, 2), round(l5 ?? 0, 2), round(l15 ?? 0, 2)],
  };
}

export const loadAverage = (): number[] => os.loadavg().map((x) => round(x, 2));

export interface BusyProcess {
  pid: number;
  /** Percent of one core over the sampling window. */
  cpuPercent: number;
  rssMiB: number;
  command: string;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface ProcSample {
  ticks: number;
  rssPages: number;
  comm: string;
}

async function readProc(pid: number): Promise<ProcSample | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name is in parentheses and may contain spaces: split after the last ')'
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return {
      ticks: Number(fields[11]) + Number(fields[12]), // utime + stime
      rssPages: Number(fields[21]),
      comm: stat.slice(stat.indexOf('(') + 1, close),
    };
  } catch {
    return null; // gone meanwhile
  }
}

async function commandLine(pid: number, fallback: string): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const line = raw.split('\0').filter(Boolean).join(' ');
  return (line || fallback).slice(0, 140);
}

async function pids(): Promise<number[]> {
  return (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
}

/** Processes that used at least `minPercent` of a core over `windowMs`, busiest first, except `exclude`. */
export async function busyProcesses({
  windowMs = 2_000,
  minPercent = 2,
  exclude = [] as number[],
} = {}): Promise<BusyProcess[]> {
  const skip = new Set([process.pid, ...exclude]);
  const first = new Map<number, ProcSample>();
  for (const pid of await pids()) {
    const s = skip.has(pid) ? null : await readProc(pid);
    if (s) first.set(pid, s);
  }
  await new Promise((r) => setTimeout(r, windowMs));
  const pageMiB = 4096 / 1024 / 1024;
  const busy: BusyProcess[] = [];
  for (const [pid, a] of first) {
    const b = await readProc(pid);
    if (!b) continue;
    const cpuPercent = round(((b.ticks - a.ticks) / TICKS_PER_SECOND / (windowMs / 1000)) * 100, 0);
    if (cpuPercent < minPercent) continue;
    busy.push({
      pid,
      cpuPercent,
      rssMiB: round(b.rssPages * pageMiB, 0),
      command: await commandLine(pid, b.comm),
    });
  }
  return busy.sort((x, y) => y.cpuPercent - x.cpuPercent);
}

/** CPU seconds (user + system) a process has used so far (0 when it is gone). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const s = await readProc(pid);
  return s ? s.ticks / TICKS_PER_SECOND : 0;
}

/** Resident memory of another process in bytes (0 when it is gone). */
export async function rssOf(pid: number): Promise<number> {
  const s = await readProc(pid);
  return s ? s.rssPages * 4096 : 0;
}

/**
 * CPU seconds of a process and everything under it: its own time, its children it has reaped (cutime + cstime),
 * and its live descendants (e.g. nginx's master and workers, old workers that exited at a reload), except the
 * subtrees of `exclude` (servers a benchmark started as its children, counted on their own).
 */
export async function treeCpuSecondsOf(pid: number, exclude: readonly number[] = []): Promise<number> {
  const all = new Map<number, { ppid: number; own: number; reaped: number }>();
  for (const p of await pids()) {
    try {
      const stat = await readFile(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      all.set(p, {
        ppid: Number(f[1]),
        own: (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND,
        reaped: (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND,
      });
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  const queue = [pid];
  const seen = new Set<number>(exclude);
  while (queue.length) {
    const p = queue.pop() as number;
    if (seen.has(p)) continue;
    seen.add(p);
    const s = all.get(p);
    if (!s) continue;
    total += s.own + s.reaped;
    for (const [child, c] of all) if (c.ppid === p) queue.push(child);
  }
  return total;
}
