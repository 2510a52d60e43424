/** Where the CPU went during a phase: this process (worker, client, vault, CA) versus the Temporal server. */
import { cpuSecondsOf } from './machine';
import { round } from './stats';

export interface CpuUse {
  wallS: number;
  benchProcessS: number;
  temporalServerS: number;
  /** Cores busy on average (both processes), out of os.cpus().length. */
  coresBusy: number;
}

export async function startCpuMeter(serverPid: number): Promise<() => Promise<CpuUse>> {
  const wall0 = performance.now();
  const own0 = process.cpuUsage();
  const server0 = await cpuSecondsOf(serverPid);
  return async () => {
    const own = process.cpuUsage(own0);
    const benchProcessS = (own.user + own.system) / 1e6;
    const temporalServerS = (await cpuSecondsOf(serverPid)) - server0;
    const wallS = (performance.now() - wall0) / 1000;
    return {
      wallS: round(wallS),
      benchProcessS: round(benchProcessS),
      temporalServerS: round(temporalServerS),
      coresBusy: round((benchProcessS + temporalServerS) / wallS, 2),
    };
  };
}
