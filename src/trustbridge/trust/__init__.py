"""Trust schemes, assurance levels, path validation; later trust lists and the resolver."""
