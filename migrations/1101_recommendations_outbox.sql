-- The outbox sweep looks for the offers still to deliver on a channel, oldest first. Without
-- an index of its own it walked every offer the channel ever had (the provider-id index), a
-- cost that grew with history on every sweep. Only waiting offers are in this one.
CREATE INDEX recommendations_outbox ON recommendations (channel, seq) WHERE status IN ('queued', 'deferred');
