from django.db import models


class Greeting(models.Model):
    text = models.CharField(max_length=200)
    when = models.DateTimeField(auto_now_add=True)
