/**
 * Determinism across releases: histories recorded from real runs (the end-to-end, change-control, drift and
 * wave-continue tests with CERTFLOW_RECORD_HISTORIES=<release>) are replayed against the current workflow code. A change that would break
 * running workflows fails here; such a change needs `patched()` (and the old history stays as a fixture).
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/tools';

const require = createRequire(import.meta.url);
const dir = path.join(repoRoot, 'test/fixtures/histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  it('covers every long-running workflow type: the lifecycle and the re-issue wave, and a continued run of each', () => {
    const typeOf = (f: string) => {
      const h = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as {
        events: Array<{
          workflowExecutionStartedEventAttributes?: {
            workflowType?: { name?: string };
            continuedExecutionRunId?: string;
          };
        }>;
      };
      const started = h.events[0]?.workflowExecutionStartedEventAttributes;
      return { type: started?.workflowType?.name, continued: Boolean(started?.continuedExecutionRunId) };
    };
    const seen = files.map(typeOf);
    for (const type of ['certificateLifecycle', 'reissueWave']) {
      expect(
        seen.some((s) => s.type === type && !s.continued),
        `${type}: a first run`,
      ).toBe(true);
      expect(
        seen.some((s) => s.type === type && s.continued),
        `${type}: a continued run`,
      ).toBe(true);
    }
  });

  it.each(files)('%s replays against the current workflow code', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
    await Worker.runReplayHistory(
      { workflowsPath: require.resolve('../../workflows/index.ts') },
      history,
      file,
    );
  });
});
