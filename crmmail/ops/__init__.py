"""Operations: the health and metrics HTTP endpoint of ``crmmail serve``."""
