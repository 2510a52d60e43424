/**
 * `certflow ui`: Temporal Web UI links. With no id, the fleet: the list of running lifecycles (a visibility query
 * in the link); the UI keeps its columns per browser, so the Certificate* columns are added once (README,
 * "Observability"). With an id, that certificate's lifecycle, checked first: a certificate that was never
 * enrolled is a not-found error (exit 3) like in every other command, not a link to nothing.
 */
import { lifecycleQuery } from '../../activities/lifecycles';
import { workflowIdFor } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { lifecycleHandle, singleId } from './common';

export const DEFAULT_UI_URL = 'http://127.0.0.1:8233';

export const ui: CommandImpl = {
  options: {
    ui: {
      type: 'string',
      value: 'URL',
      description: `Web UI base (default $CERTFLOW_UI_URL or ${DEFAULT_UI_URL})`,
    },
    ...JSON_OPTION,
  },
  async run(ctx, positionals) {
    const base = ctx.options.string('ui') ?? ctx.env.CERTFLOW_UI_URL ?? DEFAULT_UI_URL;
    if (positionals.length === 0) {
      const link = fleetLink(base, ctx.namespace);
      if (ctx.json) ctx.printJson({ url: link, query: lifecycleQuery() });
      else ctx.print(link);
      return EXIT.ok;
    }
    const id = singleId(ctx, positionals);
    const link = uiLink(base, ctx.namespace, id);
    // WorkflowNotFoundError: "no lifecycle is running for <id>", exit 3 (client/cli.ts)
    await (await lifecycleHandle(ctx, id)).describe();
    if (ctx.json) ctx.printJson({ certificateId: id, url: link });
    else ctx.print(link);
    return EXIT.ok;
  },
};

function uiRoot(base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw usageError(`--ui: expected an http(s) URL like ${DEFAULT_UI_URL}, got ${JSON.stringify(base)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`--ui: expected an http(s) URL, got ${JSON.stringify(base)}`);
  return url.href.replace(/\/+$/, '');
}

export function uiLink(base: string, namespace: string, certificateId: string): string {
  return `${uiRoot(base)}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowIdFor(certificateId))}`;
}

/** The workflow list filtered to running lifecycles (the UI's `query` parameter is a visibility query). */
export function fleetLink(base: string, namespace: string): string {
  return `${uiRoot(base)}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(lifecycleQuery())}`;
}
