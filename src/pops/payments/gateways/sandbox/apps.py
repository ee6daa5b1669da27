from django.apps import AppConfig


class SandboxGatewayConfig(AppConfig):
    name = "pops.payments.gateways.sandbox"
    label = "sandbox_gateway"
    verbose_name = "Sandbox gateway"
