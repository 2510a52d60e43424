/**
 * `certflow upgrade`: after deploying workers with a new release, move every running lifecycle onto the new
 * workflow code now instead of at its next renewal (which may be months away). Each lifecycle continues as new at
 * its next quiet moment (never during an attempt), carrying its state; lifecycles already on the new code just
 * start a fresh run. Safe to repeat.
 */
import { listLifecycles, lifecycleHandle } from '../../activities/lifecycles';
import { mapLimit } from '../../activities/bindings/concurrency';
import { upgradeSignal } from '../../workflows/messages';
import { EXIT, expectPositionals } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';

export const upgrade: CommandImpl = {
  options: {
    vault: { type: 'string', value: 'VAULT', description: 'only the lifecycles of this vault' },
    ...JSON_OPTION,
  },
  notes:
    'Run it once every worker runs the new release. A lifecycle in the middle of a renewal moves after it.',
  async run(ctx, positionals) {
    expectPositionals('upgrade', positionals, []);
    const client = await ctx.client();
    const vault = ctx.options.string('vault');
    const rows = await listLifecycles(client, vault ? { vault } : {});
    const failed: Array<{ certificateId: string; error: string }> = [];
    await mapLimit(rows, 16, async (r) => {
      try {
        await lifecycleHandle(client, r.certificateId).signal(upgradeSignal);
      } catch (err) {
        failed.push({ certificateId: r.certificateId, error: (err as Error).message });
      }
    });
    if (ctx.json) ctx.printJson({ signalled: rows.length - failed.length, failed });
    else {
      ctx.print(`asked ${rows.length - failed.length} lifecycles to move onto the current code`);
      for (const f of failed) ctx.print(`  ${f.certificateId}: ${f.error}`);
    }
    return failed.length ? EXIT.failed : EXIT.ok;
  },
};
