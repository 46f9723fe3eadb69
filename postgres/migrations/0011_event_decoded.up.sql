-- The decoded domain event (voxanne.Event as JSON), made once at ingestion by
-- the webhook package and read by processing; the raw payload stays the
-- durable record. Events stored before this version have none: processing
-- decodes their payload.
alter table webhook_events add column event json;
