-- Undo the foundation. The roles stay: they are cluster-wide and may be used by
-- other databases of the same cluster; only this database's grants go.
drop trigger if exists on_auth_user_created on auth.users;
drop function if exists auth.handle_new_user();
drop table if exists memberships;
drop table if exists organizations;
drop schema if exists auth cascade;
revoke all on schema public from voxanne_auth, voxanne_tenant;
