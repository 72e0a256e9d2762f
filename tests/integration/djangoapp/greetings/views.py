from django.http import HttpResponse

from .models import Greeting


def index(request):
    first = Greeting.objects.order_by("id").first()
    return HttpResponse(f"{first.text} ({Greeting.objects.count()} greetings)\n",
                        content_type="text/plain")
