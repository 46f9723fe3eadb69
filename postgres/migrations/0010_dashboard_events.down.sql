drop trigger if exists messages_notify_dashboard on messages;
drop trigger if exists calls_notify_dashboard on calls;
drop function if exists voxanne_notify_event();
