drop function if exists route_phone_number(text, text, text, text);
drop table if exists webhook_events;
drop table if exists messages;
drop table if exists calls;
drop table if exists contacts;
drop table if exists phone_numbers;
