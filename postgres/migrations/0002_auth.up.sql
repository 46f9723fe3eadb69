-- Auth server: per-session secrets for deterministic refresh-token successors,
-- single-use mail tokens, and key bookkeeping for rotation.

-- The successor of a refresh token is HMAC(session secret, token), so a client
-- that lost a refresh response gets the same successor again without any token
-- being stored in plain text. Two random UUIDs give 244 random bits.
alter table auth.sessions
  add column secret bytea not null default (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- Signup confirmation and password recovery tokens: stored only as SHA-256
-- hashes, single use, expiring.
create table auth.one_time_tokens (
  id          uuid primary key default gen_random_uuid(),
  user_id     uuid not null references auth.users (id) on delete cascade,
  token_type  text not null check (token_type in ('signup', 'recovery', 'invite')),
  token_hash  bytea not null unique,
  email       text not null,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  used_at     timestamptz
);
create index one_time_tokens_user_idx on auth.one_time_tokens (user_id, token_type);

-- The latest expiry of any token a key signed beyond the normal lifetime (service
-- role tokens), so a rotated key stays trusted exactly as long as needed.
alter table auth.signing_keys add column max_token_exp timestamptz;

grant select, insert, update, delete on auth.one_time_tokens to voxanne_auth;
