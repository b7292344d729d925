"""dqc's Relax passes, one per file (installed as ``dqc.passes``)."""
