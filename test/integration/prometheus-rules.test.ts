/**
 * The alerting rules shipped in deploy/prometheus, checked by Debian's promtool: the rule file is valid
 * (`promtool check rules`) and every alert passes its unit tests (`promtool test rules`), which fire each alert
 * once and show it silent where it must be (too early, renewed, another worker healthy).
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot, tools } from '../support/tools';

const run = promisify(execFile);
// js-yaml has no bundled types (as in test/unit/deploy.test.ts)
const { load } = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };
const dir = path.join(repoRoot, 'deploy/prometheus');

interface RulesFile {
  groups: { rules: { alert?: string }[] }[];
}
interface TestsFile {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe('Prometheus alerting rules (promtool)', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run(tools.promtool(), ['check', 'rules', 'certflow-alerts.yml'], { cwd: dir });
    expect(stdout).toContain('SUCCESS: 5 rules found');
  });

  it('ship an example Prometheus configuration that loads them (promtool check config)', async () => {
    const { stdout } = await run(tools.promtool(), ['check', 'config', 'prometheus.example.yml'], {
      cwd: dir,
    });
    expect(stdout).toContain('SUCCESS: 5 rules found');
  });

  it('pass their unit tests (promtool test rules)', async () => {
    const { stdout } = await run(tools.promtool(), ['test', 'rules', 'certflow-alerts.test.yml'], {
      cwd: dir,
    });
    expect(stdout).toContain('SUCCESS');
  });

  it('have a unit test that fires each alert and one where it stays silent', () => {
    const rules = load(readFileSync(path.join(dir, 'certflow-alerts.yml'), 'utf8')) as RulesFile;
    const tests = load(readFileSync(path.join(dir, 'certflow-alerts.test.yml'), 'utf8')) as TestsFile;
    const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays silent in a test`,
      ).toBe(true);
    }
  });

  it('fail when a rule is broken (promtool really checks)', async () => {
    const bad = path.join(repoRoot, '.tools', `bad-rules-${process.pid}.yml`);
    writeFileSync(bad, 'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(\n');
    try {
      await expect(run(tools.promtool(), ['check', 'rules', bad])).rejects.toMatchObject({ code: 1 });
    } finally {
      rmSync(bad, { force: true });
    }
  });
});
