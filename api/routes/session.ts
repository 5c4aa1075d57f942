import type express from 'express';
import { Router } from 'express';
import { AppError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import {
  DEFAULT_MIN_PASSWORD_LENGTH,
  validatePassword,
  validateUsername,
  type Controller,
} from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';
import { bodyField, fieldBody } from '../body.js';
import type { ApiConfig } from '../config.js';
import { loginGate, type AttemptOutcome } from '../login-limit.js';

interface Credentials {
  username: string;
  password: string;
}

function basicCredentials(header: string | undefined): Credentials | null {
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function bodyCredentials(body: unknown): Credentials | null {
  const username = bodyField(body, 'username') ?? bodyField(body, 'user');
  const password = bodyField(body, 'password');
  return typeof username === 'string' && typeof password === 'string' ? { username, password } : null;
}

/** The username an attempt is for, if it names one (for the rate limit), even without a password. */
function attemptedUsername(header: string | undefined, body: unknown): string | undefined {
  const basic = basicCredentials(header);
  if (basic) return basic.username;
  const username = bodyField(body, 'username') ?? bodyField(body, 'user');
  return typeof username === 'string' ? username : undefined;
}

export function sessionRoutes(controller: Controller, config: ApiConfig, log: Logger): Router {
  const router = Router();
  const body = fieldBody(config.maxBodyBytes, 'send credentials as fields, no files');
  const gate = loginGate(config, log);

  /** The credentials of a login attempt that were right, or a 401; the attempt's outcome goes to the gate. */
  async function checkedCredentials(req: express.Request): Promise<Credentials> {
    const settle = gate.login(req, attemptedUsername(req.get('authorization'), req.body));
    let outcome: AttemptOutcome = 'none';
    try {
      const credentials = basicCredentials(req.get('authorization')) ?? bodyCredentials(req.body);
      if (!credentials) {
        throw new AppError(
          'unauthorized',
          'send credentials: HTTP Basic auth, or a JSON or form body with "username" (or "user") and "password"',
        );
      }
      const right = await controller.users.verify(credentials.username, credentials.password);
      outcome = right ? 'success' : 'failure';
      if (!right) throw new AppError('unauthorized', 'wrong username or password');
      return credentials;
    } finally {
      settle(outcome);
    }
  }

  const login: express.RequestHandler = async (req, res) => {
    const credentials = await checkedCredentials(req);
    const { token } = controller.tokens.issue(credentials.username, 'user');
    res.json({ user: credentials.username, token });
  };
  router.post('/login', ...body, login);
  router.get('/login', login);

  router.delete('/logout', requireUser(controller.tokens), async (_req, res) => {
    const { claims } = callerOf(res);
    await controller.tokens.revoke(claims);
    res.json({ logout_message: `user ${claims.sub} logged out: the token is revoked` });
  });

  router.post('/register', ...body, async (req, res) => {
    if (!config.registrationOpen) throw new AppError('forbidden', 'registration is disabled on this server');
    gate.registration(req, attemptedUsername(undefined, req.body));
    const credentials = bodyCredentials(req.body);
    if (!credentials)
      throw new AppError('bad_request', 'send a JSON or form body with "username" (or "user") and "password"');
    const invalid =
      validateUsername(credentials.username) ??
      validatePassword(credentials.password, config.minPasswordLength ?? DEFAULT_MIN_PASSWORD_LENGTH);
    if (invalid) throw new AppError('bad_request', invalid);
    if ((await controller.users.create(credentials.username, credentials.password)) === 'exists') {
      throw new AppError('conflict', `user "${credentials.username}" already exists`);
    }
    res.status(201).json({ user: credentials.username });
  });

  return router;
}
