"""The demo practice: a deterministic import document (`document`) and `pops demo` (`build`)."""
