-- Auth completeness: sign-up through an invitation joins the inviting org
-- (no personal org), TOTP factors and challenges, sessions that remember how
-- they were authenticated (aal, amr), an org policy that requires MFA,
-- passwordless mail codes, and phone numbers as sign-in identifiers.

-- Users may sign in with a phone number instead of an email address.
alter table auth.users alter column email drop not null;
alter table auth.users add column phone text;
alter table auth.users add column phone_confirmed_at timestamptz;
alter table auth.users add constraint users_email_or_phone check (email is not null or phone is not null);
create unique index users_phone_key on auth.users (phone);

-- Sessions remember how they were authenticated: the assurance level and the
-- methods (GoTrue's amr entries, {method, timestamp}), and the factor that
-- raised them to aal2, so that unenrolling it lowers them again. A null amr
-- is a password sign-in at the session's creation (sessions made before this).
alter table auth.sessions add column amr jsonb;
alter table auth.sessions add column factor_id uuid;

-- Mailed and texted one-time tokens: magic links and their 6-digit codes,
-- reauthentication nonces, SMS codes. code_hash is SHA-256 of the recipient
-- and the code; attempts counts wrong codes tried against the token, which
-- dies after a few.
alter table auth.one_time_tokens alter column email drop not null;
alter table auth.one_time_tokens add column phone text;
alter table auth.one_time_tokens add column code_hash bytea;
alter table auth.one_time_tokens add column attempts int not null default 0;
alter table auth.one_time_tokens drop constraint one_time_tokens_token_type_check;
alter table auth.one_time_tokens add constraint one_time_tokens_token_type_check
  check (token_type in ('signup', 'recovery', 'invite', 'magiclink', 'reauthentication', 'sms'));
create index one_time_tokens_code_idx on auth.one_time_tokens (code_hash) where code_hash is not null;

-- TOTP factors. The secret is sealed with the key-encryption key when one is
-- configured (encrypted = true). last_step is the highest RFC 6238 time step
-- accepted, so each code works once; failed/failed_since count wrong codes
-- for the attempt limit.
create table auth.mfa_factors (
  id                 uuid primary key default gen_random_uuid(),
  user_id            uuid not null references auth.users (id) on delete cascade,
  friendly_name      text not null default '',
  factor_type        text not null check (factor_type in ('totp')),
  status             text not null default 'unverified' check (status in ('unverified', 'verified')),
  secret             bytea not null,
  encrypted          boolean not null default false,
  last_step          bigint not null default 0,
  failed             int not null default 0,
  failed_since       timestamptz,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  last_challenged_at timestamptz
);
create index mfa_factors_user_idx on auth.mfa_factors (user_id);
create unique index mfa_factors_name_key on auth.mfa_factors (user_id, friendly_name) where friendly_name <> '';

create table auth.mfa_challenges (
  id          uuid primary key default gen_random_uuid(),
  factor_id   uuid not null references auth.mfa_factors (id) on delete cascade,
  ip          text not null default '',
  created_at  timestamptz not null default now(),
  verified_at timestamptz
);
create index mfa_challenges_factor_idx on auth.mfa_challenges (factor_id);

grant select, insert, update, delete on auth.mfa_factors, auth.mfa_challenges to voxanne_auth;

-- An org may require every member's session to be aal2 (TOTP verified).
alter table organizations add column require_mfa boolean not null default false;

-- Changing the policy revokes the members' cached tokens for the org (as a
-- role change does), so every instance reads the new policy at the next
-- request; runs with the definer's rights because the tenant role makes the
-- change and cannot write auth.*.
create or replace function auth.revoke_org_policy() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog
  as $$
begin
  insert into auth.revocations (kind, user_id, org_id)
    select 'membership', m.user_id, m.org_id from public.memberships m where m.org_id = new.id;
  return null;
end
$$;
create trigger revoke_on_mfa_policy_change after update of require_mfa on public.organizations
  for each row when (old.require_mfa is distinct from new.require_mfa)
  execute function auth.revoke_org_policy();
revoke all on function auth.revoke_org_policy() from public;

-- Sign-up creates a personal organization only when the sign-up carries no
-- invitation. With user_metadata.invitation_token the new user joins the
-- inviting org instead: the invitation must be open, unexpired and for the
-- same address; it is accepted in the same transaction, the address counts
-- as confirmed (the token came by mail to it), and the token itself is
-- removed from the metadata, never stored. An invalid token fails the insert
-- (SQLSTATE VX404: no such open invitation; VX403: another address).
create or replace function auth.handle_new_user() returns trigger
  language plpgsql
  set search_path = pg_catalog, public
  as $$
declare
  new_org uuid;
  org_name text;
  invite_token text;
  inv record;
begin
  if new.raw_user_meta_data ? 'invitation_token' then
    invite_token := nullif(new.raw_user_meta_data ->> 'invitation_token', '');
    new.raw_user_meta_data := new.raw_user_meta_data - 'invitation_token';
  end if;
  if new.raw_app_meta_data ? 'org_id' then
    return new;
  end if;
  if invite_token is not null then
    select i.org_id, i.id, i.email, i.role into inv from public.invitations i
      where i.token_hash = sha256(convert_to(invite_token, 'UTF8'))
        and i.accepted_at is null and i.expires_at > now()
      for update;
    if not found then
      raise exception 'invitation not found, already used or expired' using errcode = 'VX404';
    end if;
    if new.email is null or inv.email <> new.email then
      raise exception 'this invitation is for another email address' using errcode = 'VX403';
    end if;
    insert into public.memberships (org_id, user_id, role) values (inv.org_id, new.id, inv.role);
    update public.invitations set accepted_at = now(), accepted_by = new.id
      where org_id = inv.org_id and id = inv.id;
    insert into public.audit_log (org_id, actor_id, action, target_type, target_id, ip, details, prev_hash, hash)
      values (inv.org_id, new.id, 'member_joined', 'user', new.id::text,
              nullif(current_setting('voxanne.client_ip', true), ''),
              jsonb_build_object('role', inv.role, 'invitation_id', inv.id, 'via', 'signup'), '', '');
    new.email_confirmed_at := coalesce(new.email_confirmed_at, now());
    new.raw_app_meta_data := new.raw_app_meta_data
      || jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'),
                            'org_id', inv.org_id, 'org_role', inv.role);
    return new;
  end if;
  org_name := nullif(btrim(new.raw_user_meta_data ->> 'org_name'), '');
  if org_name is null then
    org_name := coalesce(split_part(new.email, '@', 1), new.phone) || '''s organization';
  end if;
  insert into public.organizations (name) values (left(org_name, 200)) returning id into new_org;
  insert into public.memberships (org_id, user_id, role) values (new_org, new.id, 'owner');
  new.raw_app_meta_data := new.raw_app_meta_data
    || jsonb_build_object('org_id', new_org, 'org_role', 'owner')
    || case when new.raw_app_meta_data ? 'provider' then '{}'::jsonb
       else jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email')) end;
  return new;
end
$$;
