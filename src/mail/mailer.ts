import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { renderMail, type MailSettings, type MailTemplate, type RenderedMail } from './templates.js';

/**
 * Sends the account mails. Implementations never reject: a failure is logged and `send` resolves
 * false, so a mail server that is down or refuses never fails a request or loses an account.
 */
export interface Mailer {
  /** Renders and sends one mail; resolves true once a mail server (or the development log) took it. */
  send(template: MailTemplate): Promise<boolean>;
  /**
   * For work done after the answer: runs `prepare` (say, storing the link's token) and sends the
   * mail it returns, none for null. Tracked as `send` is, so drain and close wait for it; a failing
   * `prepare` is logged and resolves false.
   */
  sendWhenReady(prepare: () => Promise<MailTemplate | null>): Promise<boolean>;
  /** Resolves once every send started so far has finished, sent or failed. */
  drain(): Promise<void>;
  /** Drains, then releases connections. Idempotent. */
  close(): Promise<void>;
}

type Settings = MailSettings & { from: string };

/** Renders, tracks sends in flight, and turns failures into a log line and `false`. */
abstract class BaseMailer implements Mailer {
  private readonly inFlight = new Set<Promise<boolean>>();

  constructor(
    protected readonly settings: Settings,
    protected readonly logger: Logger,
  ) {}

  protected abstract deliver(mail: RenderedMail): Promise<void>;

  protected release(): void {}

  send(template: MailTemplate): Promise<boolean> {
    return this.track(this.attempt(template));
  }

  sendWhenReady(prepare: () => Promise<MailTemplate | null>): Promise<boolean> {
    return this.track(
      (async () => {
        let template: MailTemplate | null;
        try {
          template = await prepare();
        } catch (err) {
          this.logger.error('mail not prepared', { error: err });
          return false;
        }
        return template ? this.attempt(template) : false;
      })(),
    );
  }

  private async attempt(template: MailTemplate): Promise<boolean> {
    try {
      await this.deliver(renderMail(template, this.settings));
      return true;
    } catch (err) {
      this.logger.error('mail not sent', { kind: template.kind, to: template.to, error: err, ...smtpDetails(err) });
      return false;
    }
  }

  private track(work: Promise<boolean>): Promise<boolean> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
    return work;
  }

  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.drain();
    this.release();
  }
}

function smtpDetails(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return {};
  const { code, responseCode, command } = err as { code?: unknown; responseCode?: unknown; command?: unknown };
  return { code, responseCode, command };
}

/** SMTP through nodemailer, one connection per mail, with timeouts so that a hung server cannot hold a request long. */
export class SmtpMailer extends BaseMailer {
  private readonly transport: Transporter;

  constructor(email: Config['email'], logger: Logger) {
    super(email, logger);
    const implicitTls = email.port === 465;
    this.transport = nodemailer.createTransport({
      host: email.host,
      port: email.port,
      secure: implicitTls,
      // EMAIL_USE_TLS as in Django: STARTTLS is required when true and not attempted when false.
      requireTLS: email.useTls && !implicitTls,
      ignoreTLS: !email.useTls && !implicitTls,
      auth: email.user ? { user: email.user, pass: email.password ?? '' } : undefined,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
  }

  protected async deliver(mail: RenderedMail): Promise<void> {
    await this.transport.sendMail({ from: this.settings.from, ...mail });
  }

  protected override release(): void {
    this.transport.close();
  }
}

/** Development without EMAIL_HOST: the whole mail goes to the log, marked so nobody mistakes it for sent. */
export class LogMailer extends BaseMailer {
  protected async deliver(mail: RenderedMail): Promise<void> {
    this.logger.warn('MAIL NOT SENT (development mode, no EMAIL_HOST): written to this log instead', {
      mail: 'development-log',
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
    });
  }
}

/** Production without EMAIL_HOST (only allowed with ACCOUNT_EMAIL_VERIFICATION=none): logs that nothing was sent, never the content. */
export class DisabledMailer extends BaseMailer {
  protected async deliver(): Promise<void> {
    throw new Error('EMAIL_HOST is not set: no mail can be sent');
  }
}

/** Chooses the mailer for this configuration and says at start-up where mails go. */
export function createMailer(config: Config, logger: Logger): Mailer {
  const log = logger.child({ component: 'mailer' });
  if (config.email.host) return new SmtpMailer(config.email, log);
  if (config.mode === 'development') {
    log.warn('EMAIL_HOST is not set: mails are written to the log, not sent (development mode)');
    return new LogMailer(config.email, log);
  }
  log.warn('EMAIL_HOST is not set: password reset mails cannot be sent');
  return new DisabledMailer(config.email, log);
}
