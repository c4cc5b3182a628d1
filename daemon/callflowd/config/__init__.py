"""Configuration: the YAML file and callflow documents, validated into frozen values."""
