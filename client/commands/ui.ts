/** `certflow ui <id>`: the Temporal Web UI link of a certificate's lifecycle (no connection needed). */
import { workflowIdFor } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { singleId } from './common';

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
    const id = singleId(ctx, positionals);
    const link = uiLink(
      ctx.options.string('ui') ?? ctx.env.CERTFLOW_UI_URL ?? DEFAULT_UI_URL,
      ctx.namespace,
      id,
    );
    if (ctx.json) ctx.printJson({ certificateId: id, url: link });
    else ctx.print(link);
    return EXIT.ok;
  },
};

export function uiLink(base: string, namespace: string, certificateId: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw usageError(`--ui: expected an http(s) URL like ${DEFAULT_UI_URL}, got ${JSON.stringify(base)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`--ui: expected an http(s) URL, got ${JSON.stringify(base)}`);
  const root = url.href.replace(/\/+$/, '');
  return `${root}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowIdFor(certificateId))}`;
}
