"""The admin app with ScaleDeck's site (`accounts.admin_site`), named in INSTALLED_APPS instead
of django.contrib.admin. Its own module: app configs load before models, and the site needs them."""

from django.contrib.admin.apps import AdminConfig


class ScaleDeckAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.ScaleDeckAdminSite"
