-- The functions go back to the owner, and this database's grants and policies
-- of voxanne_definer and voxanne_backup go. The roles, and the owner's
-- membership, stay: they are cluster-wide and may serve other databases.
alter function auth.revoke_session() owner to current_user;
alter function auth.revoke_membership() owner to current_user;
alter function auth.revoke_user() owner to current_user;
alter function audit_chain() owner to current_user;
alter function org_member_emails() owner to current_user;
alter function route_phone_number(text, text, text, text) owner to current_user;

do $$
declare p record;
begin
  for p in select schemaname, tablename, policyname from pg_policies
           where schemaname in ('public', 'auth') and policyname in ('definer', 'backup') loop
    execute format('drop policy %I on %I.%I', p.policyname, p.schemaname, p.tablename);
  end loop;
end
$$;
revoke all on all tables in schema public, auth from voxanne_definer, voxanne_backup;
revoke all on all sequences in schema public, auth from voxanne_definer, voxanne_backup;
revoke all on function auth.jwt(), auth.org_id() from voxanne_definer;
revoke all on schema public, auth from voxanne_definer, voxanne_backup;
