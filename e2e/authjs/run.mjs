// End-to-end test: the official @supabase/auth-js client against Voxanne's
// Supabase-Auth-compatible API at <VOXANNE_URL>/auth/v1 (contract: API.md §3).
//
//   npm ci && VOXANNE_URL=http://127.0.0.1:8080 node --test run.mjs
//
// The tests run one after another and share state (the user signed up in the
// first one is used by the later ones). If the server cannot be reached, the
// first test fails with the reason and every other test is skipped.

import test from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomUUID, webcrypto } from 'node:crypto'
import { AuthClient } from '@supabase/auth-js'

const BASE = (process.env.VOXANNE_URL ?? '').replace(/\/+$/, '')
const AUTH = `${BASE}/auth/v1`
// The JWT `iss` is `<VOXANNE_PUBLIC_URL>/auth/v1`; it defaults to the address we talk to.
const ISSUER = `${(process.env.VOXANNE_PUBLIC_URL || BASE).replace(/\/+$/, '')}/auth/v1`
const API_VERSION = '2024-01-01'
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const FETCH_TIMEOUT_MS = 10_000
const TEST_TIMEOUT_MS = 30_000

// ---------------------------------------------------------------- helpers

const newEmail = () => `e2e-${randomUUID()}@example.com`
const strongPassword = () => `Vx-${randomUUID()}-Aa9!`
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function withTimeout(init = {}) {
  const timeout = AbortSignal.timeout(FETCH_TIMEOUT_MS)
  return { ...init, signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout }
}

/** In-memory implementation of auth-js's SupportedStorage (getItem/setItem/removeItem). */
function memoryStorage() {
  const map = new Map()
  return {
    map,
    getItem: (key) => (map.has(key) ? map.get(key) : null),
    setItem: (key, value) => void map.set(key, value),
    removeItem: (key) => void map.delete(key),
  }
}

/**
 * A new AuthClient with its own storage. `fetch` is the global fetch with a
 * per-request timeout, recording every request (method, path, status) so tests
 * can check what auth-js actually sent (e.g. that getClaims used the JWKS and
 * did not fall back to GET /user, or that /logout answered 204).
 */
function newClient() {
  const requests = []
  const storage = memoryStorage()
  const recordingFetch = async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url)
    const entry = {
      method: (init.method ?? 'GET').toUpperCase(),
      path: url.pathname.slice(new URL(AUTH).pathname.length) || '/',
      search: url.search,
      status: null,
    }
    requests.push(entry)
    const res = await fetch(input, withTimeout(init))
    entry.status = res.status
    return res
  }
  const client = new AuthClient({
    url: AUTH,
    headers: { apikey: 'anon' },
    persistSession: true,
    autoRefreshToken: false,
    storage,
    fetch: recordingFetch,
  })
  return { client, storage, requests }
}

/** Raw HTTP call to /auth/v1. Returns { status, headers, body } (body parsed as JSON when possible). */
async function api(method, path, { body, token, apiVersion = false, headers = {} } = {}) {
  const h = { apikey: 'anon', ...headers }
  if (body !== undefined) h['Content-Type'] = 'application/json'
  if (token) h.Authorization = `Bearer ${token}`
  if (apiVersion) h['X-Supabase-Api-Version'] = API_VERSION
  const res = await fetch(
    `${AUTH}${path}`,
    withTimeout({ method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) }),
  )
  const text = await res.text()
  let parsed = text
  try {
    parsed = text === '' ? null : JSON.parse(text)
  } catch {
    // leave as text
  }
  return { status: res.status, headers: res.headers, body: parsed }
}

/** Status of GET /auth/v1/user with this access token (200 = accepted, 401 = rejected). */
async function userStatus(accessToken) {
  return (await api('GET', '/user', { token: accessToken })).status
}

function decodeJwt(token) {
  const [h, p] = token.split('.')
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))
  return { header: dec(h), payload: dec(p) }
}

const show = (x) => JSON.stringify(x, (k, v) => (typeof v === 'string' && v.length > 80 ? `${v.slice(0, 20)}…` : v))

/** Asserts an auth-js result carries an error with this code and (optionally) status. */
function assertAuthError(result, code, status) {
  const { error } = result
  assert.ok(error, `expected an error with code ${code}, got none: ${show(result.data)}`)
  assert.equal(error.code, code, `error.code (message: ${error.message}, status: ${error.status}, name: ${error.name})`)
  if (status !== undefined) assert.equal(error.status, status, `error.status for ${code}`)
}

function assertSessionShape(session, label) {
  assert.ok(session, `${label}: expected a session`)
  assert.equal(typeof session.access_token, 'string', `${label}: access_token`)
  assert.equal(session.access_token.split('.').length, 3, `${label}: access_token is a JWT`)
  assert.equal(typeof session.refresh_token, 'string', `${label}: refresh_token`)
  assert.ok(session.refresh_token.length > 0, `${label}: refresh_token non-empty`)
  assert.equal(typeof session.expires_in, 'number', `${label}: expires_in`)
  assert.ok(session.expires_in > 0, `${label}: expires_in > 0`)
  assert.equal(typeof session.expires_at, 'number', `${label}: expires_at`)
  assert.equal(session.token_type, 'bearer', `${label}: token_type`)
  assert.ok(session.user && typeof session.user === 'object', `${label}: session.user`)
}

// ------------------------------------------------------- shared test state

const state = {
  reachable: false,
  email: null,
  password: null,
  userId: null,
  orgId: null,
  main: null, // { client, storage, requests } of the signed-up user
}

function need(...keys) {
  for (const k of keys) {
    assert.ok(state[k], `precondition: "${k}" is not set, an earlier test failed (see above)`)
  }
}

/**
 * Sequential test with a timeout; skipped (with a reason) if the server was
 * not reachable, so a dead server gives one clear failure instead of ten.
 */
function step(name, fn, timeout = TEST_TIMEOUT_MS) {
  test(name, { timeout }, async (t) => {
    if (!state.reachable) {
      t.skip(`Voxanne not reachable at ${AUTH || '(VOXANNE_URL unset)'}`)
      return
    }
    await fn(t)
  })
}

// ------------------------------------------------------------------ tests

test('server is reachable (GET /auth/v1/health)', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.ok(BASE, 'VOXANNE_URL is not set: run as VOXANNE_URL=http://127.0.0.1:8080 node --test run.mjs')
  assert.match(BASE, /^https?:\/\//, `VOXANNE_URL must be an http(s) URL, got ${JSON.stringify(BASE)}`)
  let res
  try {
    res = await fetch(`${AUTH}/health`, withTimeout({ headers: { apikey: 'anon' } }))
  } catch (e) {
    const cause = e.cause?.code ?? e.cause?.message ?? e.name
    throw new Error(`cannot reach Voxanne at ${AUTH}/health: ${e.message} (${cause}); is the server running?`)
  }
  state.reachable = true
  assert.equal(res.status, 200, `GET /auth/v1/health returned ${res.status}: ${await res.text()}`)
})

step('signUp returns a session whose user owns a new organization', async () => {
  const c = newClient()
  const email = newEmail()
  const password = strongPassword()
  const { data, error } = await c.client.signUp({ email, password, options: { data: { org_name: 'Acme Clinic' } } })
  assert.equal(error, null, `signUp error: ${error?.message} (code ${error?.code}, status ${error?.status})`)
  assertSessionShape(data.session, 'signUp')
  const user = data.session.user
  assert.deepEqual(data.user, user, 'data.user is the session user')
  assert.match(user.id, UUID_RE, 'user.id is a UUID')
  assert.equal(user.email, email)
  assert.equal(user.aud, 'authenticated')
  assert.equal(user.role, 'authenticated')
  assert.ok(user.user_metadata && typeof user.user_metadata === 'object', 'user_metadata is an object')
  assert.ok(user.app_metadata && typeof user.app_metadata === 'object', 'app_metadata is an object')
  assert.match(String(user.app_metadata.org_id), UUID_RE, 'app_metadata.org_id is a UUID')
  assert.equal(user.app_metadata.org_role, 'owner')
  // The first access token already carries the organization.
  const { payload } = decodeJwt(data.session.access_token)
  assert.equal(payload.sub, user.id, 'token sub')
  assert.equal(payload.app_metadata?.org_id, user.app_metadata.org_id, 'token app_metadata.org_id')
  assert.equal(payload.app_metadata?.org_role, 'owner', 'token app_metadata.org_role')
  // persistSession: the session is in our storage.
  assert.ok(c.storage.map.size > 0, 'session persisted to the supplied storage')

  Object.assign(state, { email, password, userId: user.id, orgId: user.app_metadata.org_id, main: c })
})

step('signUp with an existing email fails with user_already_exists (422)', async () => {
  need('email')
  const { client } = newClient()
  const res = await client.signUp({ email: state.email, password: strongPassword() })
  assertAuthError(res, 'user_already_exists', 422)
  assert.equal(res.data.session, null)
  assert.equal(res.data.user, null)
})

step('signUp with a weak password fails with weak_password (422) and reasons', async () => {
  const { client } = newClient()
  const res = await client.signUp({ email: newEmail(), password: 'short' })
  assertAuthError(res, 'weak_password', 422)
  assert.equal(res.error.name, 'AuthWeakPasswordError', 'auth-js maps weak_password to AuthWeakPasswordError')
  assert.ok(Array.isArray(res.error.reasons), `error.reasons is an array: ${show(res.error.reasons)}`)
  assert.ok(res.error.reasons.includes('length'), `error.reasons includes "length": ${show(res.error.reasons)}`)
  assert.equal(res.data.session, null)
})

step('signInWithPassword: success, wrong password and unknown email', async () => {
  need('email', 'password', 'userId')
  const ok = newClient()
  const { data, error } = await ok.client.signInWithPassword({ email: state.email, password: state.password })
  assert.equal(error, null, `signInWithPassword error: ${error?.message} (code ${error?.code})`)
  assertSessionShape(data.session, 'signInWithPassword')
  assert.equal(data.user.id, state.userId)
  assert.equal(data.session.user.id, state.userId)
  assert.equal(data.session.user.app_metadata?.org_id, state.orgId)
  state.otherSessionToken = data.session.access_token

  const wrong = await newClient().client.signInWithPassword({ email: state.email, password: `${state.password}x` })
  assertAuthError(wrong, 'invalid_credentials', 400)
  assert.equal(wrong.data.session, null)

  const unknown = await newClient().client.signInWithPassword({ email: newEmail(), password: state.password })
  assertAuthError(unknown, 'invalid_credentials', 400)
  assert.equal(unknown.error.message, wrong.error.message, 'unknown email and wrong password are indistinguishable')
})

step('getSession returns the stored session; getUser returns the user', async () => {
  need('main')
  const { client } = state.main
  const { data, error } = await client.getSession()
  assert.equal(error, null, `getSession error: ${error?.message}`)
  assertSessionShape(data.session, 'getSession')
  assert.equal(data.session.user.id, state.userId)

  const u = await client.getUser()
  assert.equal(u.error, null, `getUser error: ${u.error?.message} (code ${u.error?.code}, status ${u.error?.status})`)
  assert.equal(u.data.user.id, state.userId)
  assert.equal(u.data.user.email, state.email)
  assert.equal(u.data.user.app_metadata?.org_id, state.orgId)
  assert.equal(u.data.user.app_metadata?.org_role, 'owner')
  const last = state.main.requests.at(-1)
  assert.deepEqual([last.method, last.path, last.status], ['GET', '/user', 200])
})

step('getClaims verifies the ES256 access token locally with the JWKS', async () => {
  need('main')
  const { client, requests } = state.main
  const before = requests.length
  const { data, error } = await client.getClaims()
  assert.equal(error, null, `getClaims error: ${error?.message} (name ${error?.name}, code ${error?.code})`)
  const { claims, header } = data
  assert.equal(header.alg, 'ES256', 'JWT header alg')
  assert.equal(header.typ, 'JWT', 'JWT header typ')
  assert.ok(header.kid, 'JWT header kid')
  assert.equal(claims.sub, state.userId)
  assert.equal(claims.role, 'authenticated')
  assert.equal(claims.aud, 'authenticated')
  assert.equal(claims.iss, ISSUER, 'iss is <public>/auth/v1 (set VOXANNE_PUBLIC_URL if it differs from VOXANNE_URL)')
  assert.equal(claims.email, state.email)
  assert.equal(claims.app_metadata?.org_id, state.orgId)
  assert.equal(claims.app_metadata?.org_role, 'owner')
  assert.match(String(claims.session_id), UUID_RE, 'session_id claim')
  assert.ok(claims.exp > Date.now() / 1000, 'exp in the future')

  // auth-js silently falls back to GET /user when it cannot use the JWKS (no
  // kid, kid not in the JWKS, HS* alg): make sure that did not happen.
  const made = requests.slice(before).map((r) => `${r.method} ${r.path} ${r.status}`)
  assert.ok(made.includes('GET /.well-known/jwks.json 200'), `getClaims should fetch GET /.well-known/jwks.json; requests made: ${show(made)}`)
  assert.ok(!made.some((r) => r.startsWith('GET /user')), `getClaims fell back to GET /user (kid missing from the JWKS, no kid, or HS* alg); requests made: ${show(made)}`)

  // The JWKS itself: public EC P-256 key for the kid, no private part.
  const jwks = await api('GET', '/.well-known/jwks.json')
  assert.equal(jwks.status, 200)
  assert.ok(Array.isArray(jwks.body?.keys), 'JWKS has keys[]')
  const jwk = jwks.body.keys.find((k) => k.kid === header.kid)
  assert.ok(jwk, `JWKS contains kid ${header.kid}`)
  assert.equal(jwk.kty, 'EC')
  assert.equal(jwk.crv, 'P-256')
  assert.ok(jwk.x && jwk.y, 'JWK has x and y')
  for (const k of jwks.body.keys) assert.equal(k.d, undefined, `JWK ${k.kid} must not carry the private part "d"`)
  // Independent check of the signature with WebCrypto.
  const [h, p, s] = (await client.getSession()).data.session.access_token.split('.')
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const key = await webcrypto.subtle.importKey('jwk', jwk, alg, false, ['verify'])
  const valid = await webcrypto.subtle.verify(alg, key, Buffer.from(s, 'base64url'), Buffer.from(`${h}.${p}`))
  assert.ok(valid, 'signature verifies (raw r||s, 64 bytes)')

  // A token with a tampered payload must not verify.
  const forged = decodeJwt(`${h}.${p}.${s}`).payload
  forged.app_metadata = { ...forged.app_metadata, org_role: 'admin', org_id: randomUUID() }
  const forgedToken = `${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`
  const bad = await client.getClaims(forgedToken)
  assert.ok(bad.error, 'getClaims rejects a tampered token')
  assert.equal(bad.data, null)
})

step('updateUser: user_metadata, then password change', async () => {
  need('main', 'email', 'password')
  const { client } = state.main
  const meta = await client.updateUser({ data: { nickname: 'x' } })
  assert.equal(meta.error, null, `updateUser(data) error: ${meta.error?.message} (code ${meta.error?.code})`)
  assert.equal(meta.data.user.id, state.userId)
  assert.equal(meta.data.user.user_metadata?.nickname, 'x')
  assert.equal(meta.data.user.app_metadata?.org_id, state.orgId, 'app_metadata untouched')
  // auth-js stores the returned user in the session.
  assert.equal((await client.getSession()).data.session.user.user_metadata?.nickname, 'x')
  assert.equal((await client.getUser()).data.user.user_metadata?.nickname, 'x', 'GET /user sees the new metadata')

  const oldPassword = state.password
  const newPassword = strongPassword()
  const pw = await client.updateUser({ password: newPassword })
  assert.equal(pw.error, null, `updateUser(password) error: ${pw.error?.message} (code ${pw.error?.code})`)
  assert.equal(pw.data.user.id, state.userId)
  state.password = newPassword

  const good = await newClient().client.signInWithPassword({ email: state.email, password: newPassword })
  assert.equal(good.error, null, `sign-in with the new password: ${good.error?.message} (code ${good.error?.code})`)
  assert.equal(good.data.user.id, state.userId)
  const old = await newClient().client.signInWithPassword({ email: state.email, password: oldPassword })
  assertAuthError(old, 'invalid_credentials', 400)

  // API.md: a password change ends the user's *other* sessions, not this one.
  const own = await client.getUser()
  assert.equal(own.error, null, `the session that changed the password still works: ${own.error?.message}`)
  if (state.otherSessionToken) {
    assert.equal(await userStatus(state.otherSessionToken), 401, 'an older session of the user is ended by the password change')
  }
})

step(
  'refreshSession rotates tokens; spent token: same successor within 10 s, reuse detected after',
  async () => {
    need('main')
    const { client } = state.main
    const before = (await client.getSession()).data.session
    assertSessionShape(before, 'session before refresh')

    const { data, error } = await client.refreshSession()
    assert.equal(error, null, `refreshSession error: ${error?.message} (code ${error?.code})`)
    assertSessionShape(data.session, 'refreshSession')
    assert.equal(data.user.id, state.userId)
    assert.notEqual(data.session.access_token, before.access_token, 'new access token')
    assert.notEqual(data.session.refresh_token, before.refresh_token, 'new refresh token')
    assert.equal((await client.getSession()).data.session.refresh_token, data.session.refresh_token, 'stored')
    const spent = before.refresh_token
    const successor = data.session.refresh_token
    const refreshedAt = Date.now()

    // A client that lost the response presents the spent token again: same successor.
    const again = await api('POST', '/token?grant_type=refresh_token', { body: { refresh_token: spent } })
    assert.ok(Date.now() - refreshedAt < 10_000, 'retry happened within the 10 s window')
    assert.equal(again.status, 200, `re-presenting a just-spent token: ${show(again.body)}`)
    assert.equal(again.body.refresh_token, successor, 'the same successor refresh token is returned')
    assert.equal(typeof again.body.access_token, 'string')
    assert.equal(again.body.user?.id, state.userId)

    // Outside the window the spent token is a reuse: the whole session is revoked.
    await sleep(11_000 - (Date.now() - refreshedAt))
    const reuse = await api('POST', '/token?grant_type=refresh_token', {
      body: { refresh_token: spent },
      apiVersion: true,
    })
    assert.equal(reuse.status, 400, `reuse after 11 s: ${show(reuse.body)}`)
    assert.equal(reuse.headers.get('x-supabase-api-version'), API_VERSION, 'API version header echoed')
    assert.equal(reuse.body.code, 'refresh_token_already_used', `new error format: ${show(reuse.body)}`)
    assert.equal(typeof reuse.body.message, 'string')

    const legacy = await api('POST', '/token?grant_type=refresh_token', { body: { refresh_token: spent } })
    assert.equal(legacy.status, 400, `reuse again (legacy format): ${show(legacy.body)}`)
    assert.equal(legacy.body.code, 400, `legacy error format: ${show(legacy.body)}`)
    assert.equal(legacy.body.error_code, 'refresh_token_already_used')
    assert.equal(typeof legacy.body.msg, 'string')

    // The successor belonged to the revoked session: auth-js cannot refresh with it.
    const dead = await client.refreshSession()
    assert.ok(dead.error, `refreshSession after reuse detection must fail, got ${show(dead.data)}`)
    assert.equal(dead.data.session, null)
    assert.equal(dead.error.status, 400, `status (name ${dead.error.name}, code ${dead.error.code}, ${dead.error.message})`)
    const raw = await api('POST', '/token?grant_type=refresh_token', { body: { refresh_token: successor } })
    assert.equal(raw.status, 400, `successor of a revoked session: ${show(raw.body)}`)
  },
  40_000,
)

step('signOut scopes: others, local, global', async () => {
  // A fresh user, so this test does not depend on the password/refresh tests.
  const owner = newClient()
  const email = newEmail()
  const password = strongPassword()
  const up = await owner.client.signUp({ email, password })
  assert.equal(up.error, null, `signUp: ${up.error?.message} (code ${up.error?.code})`)
  assertSessionShape(up.data.session, 'signUp')

  const signIn = async (label) => {
    const c = newClient()
    const { data, error } = await c.client.signInWithPassword({ email, password })
    assert.equal(error, null, `sign-in ${label}: ${error?.message} (code ${error?.code})`)
    assertSessionShape(data.session, `sign-in ${label}`)
    return { ...c, token: data.session.access_token }
  }
  const logoutCall = (c) => c.requests.filter((r) => r.method === 'POST' && r.path === '/logout').at(-1)

  const [A, B, C] = [await signIn('A'), await signIn('B'), await signIn('C')]
  for (const [label, c] of Object.entries({ A, B, C })) {
    assert.equal(await userStatus(c.token), 200, `${label} works before sign-out`)
  }

  let r = await B.client.signOut({ scope: 'others' })
  assert.equal(r.error, null, `B.signOut(others): ${r.error?.message}`)
  assert.deepEqual([logoutCall(B).search, logoutCall(B).status], ['?scope=others', 204])
  assert.equal(await userStatus(A.token), 401, 'A rejected after B signs out others')
  assert.equal(await userStatus(C.token), 401, 'C rejected after B signs out others')
  assert.equal(await userStatus(up.data.session.access_token), 401, 'the sign-up session too')
  assert.equal(await userStatus(B.token), 200, 'B still works after signing out others')
  assert.ok((await B.client.getSession()).data.session, 'scope=others keeps the local session')

  r = await B.client.signOut({ scope: 'local' })
  assert.equal(r.error, null, `B.signOut(local): ${r.error?.message}`)
  assert.deepEqual([logoutCall(B).search, logoutCall(B).status], ['?scope=local', 204])
  assert.equal(await userStatus(B.token), 401, 'B rejected after local sign-out')
  assert.equal((await B.client.getSession()).data.session, null, 'local session removed from storage')

  const [D, E] = [await signIn('D'), await signIn('E')]
  r = await D.client.signOut() // default scope: global
  assert.equal(r.error, null, `D.signOut(): ${r.error?.message}`)
  assert.deepEqual([logoutCall(D).search, logoutCall(D).status], ['?scope=global', 204])
  assert.equal(await userStatus(D.token), 401, 'D rejected after global sign-out')
  assert.equal(await userStatus(E.token), 401, 'E rejected after D signs out globally')
  assert.equal((await D.client.getSession()).data.session, null, 'D local session removed')

  // The user can still sign in afterwards.
  const F = await signIn('F')
  assert.equal(await userStatus(F.token), 200, 'a new sign-in works after global sign-out')
})

step('error format: X-Supabase-Api-Version selects {code,message} vs legacy {code,error_code,msg}', async () => {
  const creds = { email: newEmail(), password: 'not-the-password-1A!' }

  const modern = await api('POST', '/token?grant_type=password', { body: creds, apiVersion: true })
  assert.equal(modern.status, 400)
  assert.match(modern.headers.get('content-type') ?? '', /application\/json/)
  assert.equal(modern.headers.get('x-supabase-api-version'), API_VERSION, 'API version header echoed')
  assert.ok(modern.headers.get('x-request-id'), 'X-Request-Id on every response')
  assert.equal(modern.body?.code, 'invalid_credentials', `body: ${show(modern.body)}`)
  assert.equal(typeof modern.body.message, 'string')

  const legacy = await api('POST', '/token?grant_type=password', { body: creds })
  assert.equal(legacy.status, 400)
  assert.match(legacy.headers.get('content-type') ?? '', /application\/json/)
  assert.ok(legacy.headers.get('x-request-id'), 'X-Request-Id on every response')
  assert.equal(legacy.body?.code, 400, `body: ${show(legacy.body)}`)
  assert.equal(legacy.body.error_code, 'invalid_credentials')
  assert.equal(typeof legacy.body.msg, 'string')
})

// ------------------------------------------- MFA, passwordless and admin

const SERVICE_KEY = process.env.VOXANNE_SERVICE_ROLE_KEY ?? ''
const MAILBOX = process.env.VOXANNE_MAILBOX_URL ?? ''

/** RFC 6238 TOTP (SHA1, 6 digits, 30 s) of a base32 secret, offset steps from now. */
function totp(secret, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0')
  const key = Buffer.alloc(Math.floor(bits.length / 8))
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2)
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset))
  const mac = createHmac('sha1', key).update(counter).digest()
  const off = mac[mac.length - 1] & 0x0f
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}

/** The nth (from 1) mail to `to` in the test SMTP server: { code, tokenHash, link }. */
async function mailTo(to, n = 1) {
  assert.ok(MAILBOX, 'VOXANNE_MAILBOX_URL is not set (the Go test sets it)')
  for (let i = 0; i < 100; i++) {
    const all = await (await fetch(MAILBOX, withTimeout())).json()
    const mine = (all ?? []).filter((m) => m.to.some((r) => r.toLowerCase() === to.toLowerCase()))
    if (mine.length >= n) {
      const data = mine[n - 1].data
      const link = data.match(/https?:\/\/\S+\/auth\/v1\/verify\?\S+/)?.[0] ?? null
      return { code: data.match(/code: (\d{6})/)?.[1] ?? data.match(/\b(\d{6})\b/)?.[1] ?? null, tokenHash: link ? new URL(link).searchParams.get('token_hash') : null, link }
    }
    await sleep(100)
  }
  throw new Error(`no mail number ${n} to ${to}`)
}

function adminClient() {
  assert.ok(SERVICE_KEY, 'VOXANNE_SERVICE_ROLE_KEY is not set (the Go test sets it)')
  return new AuthClient({ url: AUTH, headers: { apikey: 'anon', Authorization: `Bearer ${SERVICE_KEY}` }, persistSession: false, autoRefreshToken: false, fetch: (i, init) => fetch(i, withTimeout(init)) })
}

async function freshUser() {
  const c = newClient()
  const email = newEmail()
  const password = strongPassword()
  const up = await c.client.signUp({ email, password })
  assert.equal(up.error, null, `signUp: ${up.error?.message}`)
  return { ...c, email, password }
}

step('mfa: enroll, challenge, verify, getAuthenticatorAssuranceLevel, listFactors, unenroll', async () => {
  const u = await freshUser()
  const { client } = u
  let aal = await client.mfa.getAuthenticatorAssuranceLevel()
  assert.equal(aal.error, null)
  assert.deepEqual([aal.data.currentLevel, aal.data.nextLevel], ['aal1', 'aal1'])

  const en = await client.mfa.enroll({ factorType: 'totp', friendlyName: 'phone' })
  assert.equal(en.error, null, `enroll: ${en.error?.message} (${en.error?.code})`)
  assert.equal(en.data.type, 'totp')
  assert.match(en.data.totp.qr_code, /^data:image\/svg\+xml;utf-8,<svg/, 'qr_code is an SVG (auth-js makes it a data URL)')
  assert.match(en.data.totp.uri, /^otpauth:\/\/totp\//)
  const factorId = en.data.id

  const ch = await client.mfa.challenge({ factorId })
  assert.equal(ch.error, null, `challenge: ${ch.error?.message}`)
  assert.ok(ch.data.expires_at > Date.now() / 1000)
  const bad = await client.mfa.verify({ factorId, challengeId: ch.data.id, code: totp(en.data.totp.secret, 5) })
  assertAuthError(bad, 'mfa_verification_failed', 422)
  const ok = await client.mfa.verify({ factorId, challengeId: ch.data.id, code: totp(en.data.totp.secret) })
  assert.equal(ok.error, null, `verify: ${ok.error?.message} (${ok.error?.code})`)
  assert.equal(decodeJwt(ok.data.access_token).payload.aal, 'aal2')

  aal = await client.mfa.getAuthenticatorAssuranceLevel()
  assert.deepEqual([aal.data.currentLevel, aal.data.nextLevel], ['aal2', 'aal2'])
  assert.ok(aal.data.currentAuthenticationMethods.some((m) => m.method === 'totp'), 'amr has totp')
  // The same code again, on a new challenge: refused (each code once).
  const ch2 = await client.mfa.challenge({ factorId })
  assertAuthError(await client.mfa.verify({ factorId, challengeId: ch2.data.id, code: totp(en.data.totp.secret) }), 'mfa_verification_failed', 422)

  const list = await client.mfa.listFactors()
  assert.equal(list.error, null)
  assert.deepEqual(list.data.totp.map((f) => [f.id, f.status]), [[factorId, 'verified']])
  const un = await client.mfa.unenroll({ factorId })
  assert.equal(un.error, null, `unenroll: ${un.error?.message} (${un.error?.code})`)
  assert.equal(un.data.id, factorId)
  await client.refreshSession()
  assert.equal((await client.mfa.listFactors()).data.all.length, 0)
})

step('signInWithOtp: the mailed code and the mailed link, each once; shouldCreateUser false', async () => {
  const email = newEmail()
  const c = newClient()
  const none = await c.client.signInWithOtp({ email, options: { shouldCreateUser: false } })
  assertAuthError(none, 'otp_disabled', 422)
  const sent = await c.client.signInWithOtp({ email })
  assert.equal(sent.error, null, `signInWithOtp: ${sent.error?.message}`)
  const first = await mailTo(email, 1)
  const v = await c.client.verifyOtp({ email, token: first.code, type: 'email' })
  assert.equal(v.error, null, `verifyOtp(code): ${v.error?.message} (${v.error?.code})`)
  assertSessionShape(v.data.session, 'verifyOtp')
  assert.equal(v.data.user.email, email)
  assertAuthError(await newClient().client.verifyOtp({ email, token: first.code, type: 'email' }), 'otp_expired', 403)

  await c.client.signInWithOtp({ email })
  const second = await mailTo(email, 2)
  const l = await newClient().client.verifyOtp({ token_hash: second.tokenHash, type: 'magiclink' })
  assert.equal(l.error, null, `verifyOtp(token_hash): ${l.error?.message}`)
  assert.equal(l.data.user.email, email)
  assertAuthError(await newClient().client.verifyOtp({ token_hash: second.tokenHash, type: 'magiclink' }), 'otp_expired', 403)
})

step('getUserIdentities, resend, reauthenticate with a password change', async () => {
  const u = await freshUser()
  const ids = await u.client.getUserIdentities()
  assert.equal(ids.error, null, `getUserIdentities: ${ids.error?.message}`)
  assert.equal(ids.data.identities.length, 1)
  assert.equal(ids.data.identities[0].provider, 'email')
  assert.equal(ids.data.identities[0].identity_data.email, u.email)

  const r = await newClient().client.resend({ type: 'signup', email: newEmail() })
  assert.equal(r.error, null, `resend: ${r.error?.message}`)

  const re = await u.client.reauthenticate()
  assert.equal(re.error, null, `reauthenticate: ${re.error?.message}`)
  const { code } = await mailTo(u.email, 1)
  assertAuthError(await u.client.updateUser({ password: strongPassword(), nonce: '000000' }), 'reauthentication_not_valid', 400)
  const ok = await u.client.updateUser({ password: strongPassword(), nonce: code })
  assert.equal(ok.error, null, `updateUser with nonce: ${ok.error?.message}`)
})

step('admin: inviteUserByEmail, generateLink (each type), listUsers over pages and a bad page', async () => {
  const admin = adminClient().admin
  const invited = newEmail()
  const inv = await admin.inviteUserByEmail(invited, { data: { name: 'Ivy' } })
  assert.equal(inv.error, null, `inviteUserByEmail: ${inv.error?.message} (${inv.error?.code})`)
  assert.equal(inv.data.user.email, invited)
  const mail = await mailTo(invited, 1)
  assert.match(mail.link, /type=invite/)
  const v = await newClient().client.verifyOtp({ token_hash: mail.tokenHash, type: 'invite' })
  assert.equal(v.error, null, `verify invite: ${v.error?.message}`)

  const email = newEmail()
  for (const [type, extra] of [['signup', { password: strongPassword() }], ['magiclink', {}], ['recovery', {}]]) {
    const g = await admin.generateLink({ type, email, ...extra })
    assert.equal(g.error, null, `generateLink ${type}: ${g.error?.message} (${g.error?.code})`)
    assert.equal(g.data.user.email, email)
    assert.equal(g.data.properties.verification_type, type)
    assert.match(g.data.properties.action_link, /\/auth\/v1\/verify\?/)
    const vo = await newClient().client.verifyOtp({ email, token: g.data.properties.email_otp, type: type === 'magiclink' ? 'email' : type })
    assert.equal(vo.error, null, `verify generated ${type}: ${vo.error?.message} (${vo.error?.code})`)
  }
  const gi = await admin.generateLink({ type: 'invite', email: newEmail() })
  assert.equal(gi.error, null, `generateLink invite: ${gi.error?.message}`)

  for (let i = 0; i < 3; i++) await freshUser()
  const p1 = await admin.listUsers({ page: 1, perPage: 2 })
  assert.equal(p1.error, null, `listUsers: ${p1.error?.message}`)
  assert.equal(p1.data.users.length, 2)
  assert.ok(p1.data.total >= 5, `total from X-Total-Count: ${p1.data.total}`)
  assert.equal(p1.data.nextPage, 2)
  assert.equal(p1.data.lastPage, Number(String(Math.ceil(p1.data.total / 2))[0]), 'lastPage (auth-js reads its first digit)')
  const p2 = await admin.listUsers({ page: 2, perPage: 2 })
  assert.equal(p2.data.users.length, 2)
  assert.notDeepEqual(p2.data.users.map((u) => u.id), p1.data.users.map((u) => u.id), 'page 2 differs from page 1')
  const badPage = await api('GET', '/admin/users?page=-1', { token: SERVICE_KEY, apiVersion: true })
  assert.equal(badPage.status, 400)
  assert.equal(badPage.body.code, 'validation_failed')
})

step('features not offered answer GoTrue\'s disabled-feature errors', async () => {
  const { client } = newClient()
  assertAuthError(await client.signInAnonymously(), 'anonymous_provider_disabled', 422)
  assertAuthError(await client.signUp({ phone: '+15551234567', password: strongPassword() }), 'phone_provider_disabled', 422)
  assertAuthError(await client.signInWithPassword({ phone: '+15551234567', password: strongPassword() }), 'phone_provider_disabled', 422)
  assertAuthError(await client.signInWithOtp({ phone: '+15551234567' }), 'phone_provider_disabled', 422)
  assertAuthError(await client.signInWithIdToken({ provider: 'google', token: 'not-a-token' }), 'provider_disabled', 400)
  const web3 = await api('POST', '/token?grant_type=web3', { body: { chain: 'solana', message: 'm', signature: 's' }, apiVersion: true })
  assert.deepEqual([web3.status, web3.body.code, web3.body.message], [422, 'web3_provider_disabled', 'Web3 provider is disabled'])
})
