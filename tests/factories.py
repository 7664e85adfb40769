"""factory_boy factories for the models the tests need."""

import factory
from django.contrib.auth import get_user_model

from apikeys import services

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def make_key(user, arch="dual-llm", **docs):
    """Create a key through the service (so hashing and validation are the real ones)."""
    return services.do_create_api_key(user=user, name=f"{arch} test key", arch=arch, **docs)
