/**
 * A real SMTP listener for tests (the `smtp-server` package on 127.0.0.1, a free port). It collects
 * every message, hands them out with `waitForMail(to)`, and can refuse mail or be stopped and
 * started again on the same port to play a mail server that is down.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';

export interface ReceivedMail {
  /** Envelope recipients, lower case. */
  to: string[];
  from: string;
  subject: string;
  text: string;
  html: string;
  raw: string;
}

interface Waiter {
  to: string;
  resolve(mail: ReceivedMail): void;
}

type Refusal = { code: number; message: string } | null;

export class TestSmtpServer {
  readonly messages: ReceivedMail[] = [];
  private readonly taken = new Set<ReceivedMail>();
  private waiters: Waiter[] = [];
  private refusal: Refusal = null;
  private server: SMTPServer | null = null;
  private port = 0;

  /** Starts listening on 127.0.0.1 (a free port the first time, the same port again after stop()). */
  async start(): Promise<this> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      closeTimeout: 1000,
      onRcptTo: (_address, _session, callback) => callback(this.refusalError()),
      onData: (stream, session, callback) => this.receive(stream, session.envelope.rcptTo.map((r) => r.address), session.envelope.mailFrom, callback),
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    server.on('error', () => {}); // a client hanging up mid-session is not the test's concern
    this.server = server;
    this.port = (server.server.address() as AddressInfo).port;
    return this;
  }

  get running(): boolean {
    return this.server !== null;
  }

  /** Closes the listener: connections are refused until start() again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The variables that point the app at this listener (plain SMTP, no authentication). */
  env(): Record<string, string> {
    return { EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(this.port), EMAIL_USE_TLS: 'false' };
  }

  /** Refuses every recipient with this reply (550: permanent, 451: temporary) until accept(). */
  refuse(code: 550 | 451 = 550, message = code === 550 ? 'Mailbox unavailable' : 'Try again later'): void {
    this.refusal = { code, message };
  }

  accept(): void {
    this.refusal = null;
  }

  /** The next mail to `to` not handed out before; waits for it (fails after `timeoutMs`). */
  waitForMail(to: string, timeoutMs = 5000): Promise<ReceivedMail> {
    const address = to.toLowerCase();
    const ready = this.messages.find((m) => !this.taken.has(m) && m.to.includes(address));
    if (ready) {
      this.taken.add(ready);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { to: address, resolve };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no mail to ${to} within ${timeoutMs} ms (received: ${this.messages.map((m) => m.to.join(',')).join('; ') || 'none'})`));
      }, timeoutMs);
      waiter.resolve = (mail) => {
        clearTimeout(timer);
        resolve(mail);
      };
      this.waiters.push(waiter);
    });
  }

  /** Every mail received for `to`, handed out or not. */
  mailsTo(to: string): ReceivedMail[] {
    return this.messages.filter((m) => m.to.includes(to.toLowerCase()));
  }

  private refusalError(): Error | null {
    if (!this.refusal) return null;
    return Object.assign(new Error(this.refusal.message), { responseCode: this.refusal.code });
  }

  private receive(stream: SMTPServerDataStream, rcptTo: string[], mailFrom: false | { address: string }, done: (err?: Error | null) => void) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const mail = { ...parseMessage(raw), to: rcptTo.map((a) => a.toLowerCase()), from: mailFrom ? mailFrom.address : '', raw };
      this.messages.push(mail);
      const waiter = this.waiters.find((w) => mail.to.includes(w.to));
      if (waiter) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.taken.add(mail);
        waiter.resolve(mail);
      }
      done();
    });
  }
}

export async function startSmtpServer(): Promise<TestSmtpServer> {
  return new TestSmtpServer().start();
}

/** The `token` query parameter of the first link in the mail's text that starts with `urlPrefix`. */
export function tokenFromMail(mail: ReceivedMail, urlPrefix: string): string {
  const link = mail.text.split(/\s+/).find((word) => word.startsWith(urlPrefix));
  if (!link) throw new Error(`no link starting with ${urlPrefix} in:\n${mail.text}`);
  const token = new URL(link).searchParams.get('token');
  if (!token) throw new Error(`no token in ${link}`);
  return token;
}

// ------------------------------------------------------------------ a small MIME reader

interface Part {
  headers: Map<string, string>;
  body: string;
}

function splitPart(raw: string): Part {
  const at = raw.search(/\r?\n\r?\n/);
  const head = at < 0 ? raw : raw.slice(0, at);
  const body = at < 0 ? '' : raw.slice(at).replace(/^\r?\n\r?\n/, '');
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function decodeBody(part: Part): string {
  const encoding = (part.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const bytes = part.body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => `%${hex}`);
    return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, '%25'));
  }
  return part.body;
}

function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([BQ])\?([^?]*)\?=/gi, (_m, _charset, kind: string, text: string) =>
    kind.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('utf8')
      : decodeURIComponent(text.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, '%$1')),
  );
}

function leaves(part: Part): Part[] {
  const type = part.headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!type.toLowerCase().startsWith('multipart/') || !boundary) return [part];
  const sections = part.body.split(`--${boundary}`).slice(1);
  return sections.filter((s) => !s.startsWith('--')).flatMap((s) => leaves(splitPart(s.replace(/^\r?\n/, ''))));
}

function parseMessage(raw: string): Pick<ReceivedMail, 'subject' | 'text' | 'html'> {
  const top = splitPart(raw);
  const parts = leaves(top);
  const ofType = (t: string) => parts.find((p) => (p.headers.get('content-type') ?? 'text/plain').toLowerCase().startsWith(t));
  const text = ofType('text/plain');
  const html = ofType('text/html');
  return {
    subject: decodeWords(top.headers.get('subject') ?? ''),
    text: text ? decodeBody(text) : '',
    html: html ? decodeBody(html) : '',
  };
}
