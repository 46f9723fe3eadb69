-- Undo 0014. Phone-only users and the one-time tokens of the new kinds cannot
-- exist without it and are deleted.
create or replace function auth.handle_new_user() returns trigger
  language plpgsql
  set search_path = pg_catalog, public
  as $$
declare
  new_org uuid;
  org_name text;
begin
  if new.raw_app_meta_data ? 'org_id' then
    return new;
  end if;
  org_name := nullif(btrim(new.raw_user_meta_data ->> 'org_name'), '');
  if org_name is null then
    org_name := split_part(new.email, '@', 1) || '''s organization';
  end if;
  insert into public.organizations (name) values (left(org_name, 200)) returning id into new_org;
  insert into public.memberships (org_id, user_id, role) values (new_org, new.id, 'owner');
  new.raw_app_meta_data := new.raw_app_meta_data
    || jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'),
                          'org_id', new_org, 'org_role', 'owner');
  return new;
end
$$;

drop trigger if exists revoke_on_mfa_policy_change on public.organizations;
drop function if exists auth.revoke_org_policy();
alter table organizations drop column if exists require_mfa;

drop table if exists auth.mfa_challenges;
drop table if exists auth.mfa_factors;

delete from auth.one_time_tokens where token_type not in ('signup', 'recovery', 'invite') or email is null;
drop index if exists auth.one_time_tokens_code_idx;
alter table auth.one_time_tokens drop constraint one_time_tokens_token_type_check;
alter table auth.one_time_tokens add constraint one_time_tokens_token_type_check
  check (token_type in ('signup', 'recovery', 'invite'));
alter table auth.one_time_tokens drop column if exists attempts;
alter table auth.one_time_tokens drop column if exists code_hash;
alter table auth.one_time_tokens drop column if exists phone;
alter table auth.one_time_tokens alter column email set not null;

alter table auth.sessions drop column if exists factor_id;
alter table auth.sessions drop column if exists amr;

delete from auth.users where email is null;
drop index if exists auth.users_phone_key;
alter table auth.users drop constraint if exists users_email_or_phone;
alter table auth.users drop column if exists phone_confirmed_at;
alter table auth.users drop column if exists phone;
alter table auth.users alter column email set not null;
