from django.urls import path

from deployments_app.api import artifact_views

_ARTIFACTS = "v1/deployments/artifacts"
_RELEASES_V1 = "v1/deployments/deployments/releases"
_RELEASES_V2 = "v2/deployments/deployments/releases"

# Mounted at /api/devices/. The download view authorises by its signed link, not by a token;
# its path must match deployments_app.downloads.DOWNLOAD_PATH_TEMPLATE.
device_urlpatterns = [
    path(
        "v1/deployments/download/artifacts/<str:artifact_id>",
        artifact_views.artifact_download_view,
        name="artifact-download",
    ),
]

# Mounted at /api/management/.
management_urlpatterns = [
    path(_ARTIFACTS, artifact_views.ArtifactListView.as_view()),
    path(f"{_ARTIFACTS}/list", artifact_views.ArtifactPagedListView.as_view()),
    path(
        f"{_ARTIFACTS}/<str:artifact_id>", artifact_views.ArtifactDetailView.as_view()
    ),
    path(
        f"{_ARTIFACTS}/<str:artifact_id>/download",
        artifact_views.ArtifactDownloadLinkView.as_view(),
    ),
    path(_RELEASES_V1, artifact_views.ReleaseListV1View.as_view()),
    path(f"{_RELEASES_V1}/list", artifact_views.ReleasePagedListV1View.as_view()),
    path(_RELEASES_V2, artifact_views.ReleaseListV2View.as_view()),
    path(
        f"{_RELEASES_V2}/<str:release_name>",
        artifact_views.ReleaseDetailV2View.as_view(),
    ),
    path(
        f"{_RELEASES_V2}/<str:release_name>/tags",
        artifact_views.ReleaseTagsV2View.as_view(),
    ),
    path(
        "v2/deployments/releases/all/tags",
        artifact_views.ReleaseAllTagsV2View.as_view(),
    ),
    path(
        "v2/deployments/releases/all/types",
        artifact_views.ReleaseAllTypesV2View.as_view(),
    ),
]
