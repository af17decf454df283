"""What an error report may show (the DEBUG page, the emails to ADMINS): never a secret."""

from django.views.debug import SafeExceptionReporterFilter


class SecretHidingFilter(SafeExceptionReporterFilter):
    """Django's filter, active with DEBUG on too (Django's is not, so @sensitive_variables and
    @sensitive_post_parameters would hide nothing on the DEBUG page), and also hiding every frame
    variable and POST value whose name looks secret (SECRET, PASS, KEY, TOKEN, ..., in dicts as
    well), in functions nobody marked."""

    def is_active(self, request):
        return True

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if self.cleanse_setting(name, "") == self.cleansed_substitute:
                cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self.cleanse_setting(name, value)) for name, value in variables]
