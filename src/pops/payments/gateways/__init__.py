"""Card gateways: the contract (`base`), the registry of adapters (`registry`) and the adapters
themselves, one package each (`sandbox`, ...)."""
