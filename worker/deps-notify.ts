/**
 * The notifiers: e-mail over SMTP and a chat webhook (Slack / Teams). Each keeps its own sent-log under
 * `dataDir` so that a restarted worker does not send an event twice (in memory when no dataDir is configured).
 * Each notifier's module (nodemailer for e-mail) is loaded only when it is configured.
 */
import path from 'node:path';
import type { ChatNotifier } from '../activities/notify/chat';
import type { EmailNotifier } from '../activities/notify/email';
import type { CertflowConfig } from './config';
import type { Collector } from './deps-collector';

export const EMAIL_SENT_LOG = 'sent-email.log';
export const CHAT_SENT_LOG = 'sent-chat.log';

const sentLog = (config: CertflowConfig, file: string) =>
  config.dataDir ? { sentLogPath: path.resolve(config.dataDir, file) } : {};

export async function buildEmail(config: CertflowConfig, c: Collector): Promise<EmailNotifier | null> {
  const e = config.notify.email;
  if (!e) return null;
  const pass = e.password ? c.secret(e.password, 'notify.email.password') : undefined;
  const ca = e.caFile ? c.file(e.caFile, 'notify.email.caFile') : undefined;
  const { createEmailNotifier } = await import('../activities/notify/email');
  return (
    c.build('notify.email', () =>
      createEmailNotifier({
        transport: {
          host: e.host,
          port: e.port,
          secure: e.secure ?? e.port === 465,
          ...(e.requireTls !== undefined ? { requireTLS: e.requireTls } : {}),
          ...(e.address ? { address: e.address } : {}),
          ...(e.user ? { auth: { user: e.user, pass: pass ?? '' } } : {}),
          ...(ca ? { tls: { ca } } : {}),
        },
        from: e.from,
        ...(e.defaultRecipients ? { defaultRecipients: e.defaultRecipients } : {}),
        ...sentLog(config, EMAIL_SENT_LOG),
      }),
    ) ?? null
  );
}

export async function buildChat(config: CertflowConfig, c: Collector): Promise<ChatNotifier | null> {
  const chat = config.notify.chat;
  if (!chat) return null;
  const url = c.secret(chat.url, 'notify.chat.url');
  if (!url) return null;
  const { createChatNotifier } = await import('../activities/notify/chat');
  return (
    c.build('notify.chat.url', () =>
      createChatNotifier({ url, flavor: chat.flavor, ...sentLog(config, CHAT_SENT_LOG) }),
    ) ?? null
  );
}
