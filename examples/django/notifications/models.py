from django.db import models


class Grade(models.Model):
    student_id = models.IntegerField()
    course = models.CharField(max_length=100)
    grade = models.CharField(max_length=4)
