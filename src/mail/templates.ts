/**
 * The mails this server sends, as typed templates. Each is rendered to plain text and to simple
 * HTML. Only server-made text goes into a mail: nothing a registrant typed (a name could carry spam
 * to an address that never asked for it).
 */

export type MailTemplate =
  | { kind: 'verify-email'; to: string; token: string; ttlSeconds: number }
  | { kind: 'reset-password'; to: string; token: string; ttlSeconds: number };

export interface MailSettings {
  siteName: string;
  /** `{token}` is replaced by the URL-encoded token. */
  verifyUrlTemplate: string;
  resetUrlTemplate: string;
}

export interface RenderedMail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

interface Body {
  subject: string;
  /** Paragraphs before the link. */
  intro: string[];
  url: string;
  linkLabel: string;
  ttlSeconds: number;
}

/** Renders one mail. The switch is exhaustive: a new template kind does not compile until handled here. */
export function renderMail(template: MailTemplate, settings: MailSettings): RenderedMail {
  switch (template.kind) {
    case 'verify-email':
      return assemble(template.to, settings.siteName, {
        subject: 'Please Confirm Your E-mail Address',
        intro: [
          `You're receiving this e-mail because someone has given your e-mail address to register an account on ${settings.siteName}.`,
          'To confirm this is correct, go to the link below.',
        ],
        url: linkFor(settings.verifyUrlTemplate, template.token),
        linkLabel: 'Confirm my e-mail address',
        ttlSeconds: template.ttlSeconds,
      });
    case 'reset-password':
      return assemble(template.to, settings.siteName, {
        subject: 'Password Reset E-mail',
        intro: [
          "You're receiving this e-mail because you or someone else has requested a password for your user account.",
          'It can be safely ignored if you did not request a password reset. Click the link below to reset your password.',
        ],
        url: linkFor(settings.resetUrlTemplate, template.token),
        linkLabel: 'Reset my password',
        ttlSeconds: template.ttlSeconds,
      });
    default: {
      const unknown: never = template;
      throw new Error(`unknown mail template ${JSON.stringify(unknown)}`);
    }
  }
}

export function linkFor(urlTemplate: string, token: string): string {
  return urlTemplate.split('{token}').join(encodeURIComponent(token));
}

function assemble(to: string, siteName: string, body: Body): RenderedMail {
  const expiry = `This link expires in ${humanDuration(body.ttlSeconds)} and works once.`;
  const text = [
    `Hello from ${siteName}!`,
    ...body.intro,
    body.url,
    expiry,
    `Thank you for using ${siteName}!`,
  ].join('\n\n');
  const html = [
    '<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5">',
    `<p>Hello from ${escapeHtml(siteName)}!</p>`,
    ...body.intro.map((p) => `<p>${escapeHtml(p)}</p>`),
    `<p><a href="${escapeHtml(body.url)}">${escapeHtml(body.linkLabel)}</a></p>`,
    `<p style="color: #555">Or paste this address into your browser: ${escapeHtml(body.url)}</p>`,
    `<p>${escapeHtml(expiry)}</p>`,
    `<p>Thank you for using ${escapeHtml(siteName)}!</p>`,
    '</body></html>',
  ].join('\n');
  return { to, subject: `[${siteName}] ${body.subject}`, text: text + '\n', html };
}

/** 259200 -> "3 days", 3600 -> "1 hour", 90 -> "1 minute". */
export function humanDuration(seconds: number): string {
  const units: [string, number][] = [
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
  ];
  for (const [name, size] of units) {
    const n = Math.floor(seconds / size);
    if (n >= 1) return `${n} ${name}${n === 1 ? '' : 's'}`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
