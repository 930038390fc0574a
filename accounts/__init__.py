"""Who may do what: roles (viewer, operator, admin) and hashed bot tokens."""
