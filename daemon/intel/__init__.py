"""Threat intelligence feeds: CISA KEV, FIRST EPSS and VEX documents (DESIGN.md "Growing the
pipeline"). ``kev``/``epss``/``vex`` parse and validate (pure), ``changes`` maps a feed change
onto open findings (pure), ``fetch`` is the HTTP edge and ``refresh`` ties them together."""
