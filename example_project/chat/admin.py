from django.contrib import admin

from .models import Channel, Message


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "channel", "author", "body", "created_at"]
    list_filter = ["channel"]
    search_fields = ["body", "author__username"]
    raw_id_fields = ["author"]
