alter table webhook_events drop column event;
