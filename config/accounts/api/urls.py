from django.urls import path

from config.accounts.api import views

management_urlpatterns = [
    path("v1/useradm/auth/login", views.LoginView.as_view()),
    path("v1/useradm/auth/logout", views.LogoutView.as_view()),
    path("v1/useradm/users", views.UserListView.as_view()),
    path("v1/useradm/users/<str:user_id>", views.UserDetailView.as_view()),
    path("v1/useradm/settings/tokens", views.TokenListView.as_view()),
    path("v1/useradm/settings/tokens/<str:token_id>", views.TokenDetailView.as_view()),
]
