-- River (the job runner) runs as its own role instead of the owner: exactly
-- what River's tables need at run time (rows of its job, leader, queue and
-- client tables, its job id sequence; its migration table read-only). It owns
-- nothing and is no superuser, so River's own migrations, and its periodic
-- REINDEX (which needs ownership), stay with the owner. A River upgrade that
-- adds a table needs a migration granting it here.
do $$
declare t text;
begin
  if not exists (select 1 from pg_roles where rolname = 'voxanne_river') then
    create role voxanne_river nologin noinherit nobypassrls;
  end if;
  for t in select tablename from pg_tables where schemaname = current_schema() and tablename like 'river\_%' loop
    if t = 'river_migration' then
      execute format('grant select on %I to voxanne_river', t);
    else
      execute format('grant select, insert, update, delete on %I to voxanne_river', t);
    end if;
  end loop;
  for t in select sequencename from pg_sequences where schemaname = current_schema() and sequencename like 'river\_%' loop
    execute format('grant usage, select on sequence %I to voxanne_river', t);
  end loop;
end
$$;
grant usage on schema public to voxanne_river;
-- Like the other service roles: no statement or idle transaction holds a
-- connection for long.
alter role voxanne_river set statement_timeout = '30s';
alter role voxanne_river set idle_in_transaction_session_timeout = '15s';
