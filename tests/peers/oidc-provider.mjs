// A real OpenID Connect provider for the tests (npm `oidc-provider`), on loopback.
// - Any login/password is accepted (devInteractions); the login name is the `sub`.
// - Clients register themselves (dynamic registration): every test app has its own port.
// - Each account's `groups` claim comes from GROUPS below, and tests change it with
//   PUT /test/groups/<sub> (JSON array body) to check re-sync at the next sign-in.
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 3000);
const ISSUER = `http://127.0.0.1:${PORT}`;

const GROUPS = new Map(Object.entries({
  alice: ['payments:lead'],
  bob: ['payments'],
  carol: ['ledger:lead', 'switchboard-admins'],
  dave: [],
}));

const oidc = new Provider(ISSUER, {
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  cookies: { keys: ['switchboard-test-cookie-key'] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub,
      email: `${sub}@example.test`,
      email_verified: true,
      name: sub.charAt(0).toUpperCase() + sub.slice(1),
      groups: GROUPS.get(sub) ?? [],
    }),
  }),
});

oidc.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/test\/groups\/([^/]+)$/);
  if (m && ctx.method === 'PUT') {
    let body = '';
    for await (const chunk of ctx.req) body += chunk;
    GROUPS.set(decodeURIComponent(m[1]), JSON.parse(body));
    ctx.status = 204;
    return;
  }
  await next();
});

oidc.on('server_error', (ctx, err) => console.error('server_error', err));
oidc.listen(PORT, '127.0.0.1', () => console.log(`oidc-provider listening on ${ISSUER}`));
