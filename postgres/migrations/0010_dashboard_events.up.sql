-- Dashboard live updates: every new or changed call and message announces its
-- org, its kind and its id (never its data) on the voxanne_events channel. Each
-- instance LISTENs once and passes the ids to that org's open dashboard streams,
-- which re-read through the tenant path; so it works with several instances.
create function voxanne_notify_event() returns trigger
  language plpgsql as $$
begin
  perform pg_notify('voxanne_events',
    json_build_object('org_id', new.org_id, 'kind', tg_argv[0], 'id', new.id)::text);
  return null;
end $$;

create trigger calls_notify_dashboard after insert or update on calls
  for each row execute function voxanne_notify_event('call');
create trigger messages_notify_dashboard after insert or update on messages
  for each row execute function voxanne_notify_event('message');
