"""What we change: scale actions (the audit), overrides with expiry, pre-scale rules, GPU quotas."""
