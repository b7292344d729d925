"""dqc's schedule rules for its integer kernels, one per file (installed as ``dqc.schedules``)."""
