from django.apps import AppConfig


class KodoConfig(AppConfig):
    name = "kodo"
    verbose_name = "Kodo"

    def ready(self):
        # local: AppConfig.ready runs once the app registry is loaded
        from django.contrib.auth.signals import user_logged_in

        from kodo.middleware import record_activity_on_login

        user_logged_in.connect(record_activity_on_login, dispatch_uid="kodo-idle-clock")
