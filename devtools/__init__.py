"""Development and CI tooling; not part of the Django project and not shipped in the wheel."""
