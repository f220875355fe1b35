-- What a kept trace says about its sampling: the sample rate of its trace (1 / the
-- probability of the rule that kept it; counting queries scale by it) and the name of
-- that rule, on every span and in the trace index. Rows written before sampling existed
-- read as kept whole (rate 1) by no rule.
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

ALTER TABLE spans ADD COLUMN sampled_by String AFTER sample_rate;

ALTER TABLE trace_index ADD COLUMN sample_rate Float32 DEFAULT 1 AFTER service_names;

ALTER TABLE trace_index ADD COLUMN sampled_by String AFTER sample_rate;
