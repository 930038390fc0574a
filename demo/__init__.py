"""The demo: seeding its world (`manage.py demo_seed`) and running the product around it (`manage.py demo_run`)."""
