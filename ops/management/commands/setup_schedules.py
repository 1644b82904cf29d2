from django.core.management.base import BaseCommand
from django.db import transaction
from django_q.models import Schedule

from ops.schedules import schedules_configured


class Command(BaseCommand):
    help = "Register the worker's recurring jobs; safe to run any number of times."

    def handle(self, *args, **options):
        specs = schedules_configured()
        with transaction.atomic():
            for spec in specs:
                # Schedule.name is not unique in the database: keep exactly one row per name.
                extra = Schedule.objects.filter(name=spec.name).order_by("pk")[1:]
                Schedule.objects.filter(pk__in=[s.pk for s in extra]).delete()
                _, created = Schedule.objects.update_or_create(
                    name=spec.name,
                    defaults={
                        "func": spec.func,
                        "schedule_type": Schedule.MINUTES,
                        "minutes": spec.minutes,
                        "repeats": -1,
                    },
                )
                self.stdout.write(f"{'registered' if created else 'up to date'}: {spec.name} every {spec.minutes} min")
            known = {spec.name for spec in specs}
            stale = Schedule.objects.filter(name__startswith="guildhall.").exclude(name__in=known)
            stale.delete()
