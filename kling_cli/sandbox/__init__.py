"""A local simulator of the ToAPIs video service: no key, no credits, standard library only.

It serves the API (`POST /v1/videos/generations`, `GET /v1/videos/generations/{id}`,
`POST /v1/uploads/images`) on one port and, on a second port, the "video host" that the task
results point to. Any non-empty `Authorization: Bearer ...` key is accepted; the video host
needs none (as the real one, it must never receive the key).

A task is `queued`, then `in_progress` (progress rising to 99), then `completed` with a short
real MP4 clip of the requested aspect ratio.

Prompt markers rehearse trouble (put them anywhere in the prompt; they combine):

  [fail]            the task ends `failed`, with error {"code": "content_policy", "message": ...}
  [fail-text]       the task ends `failed`, with `error` a plain string
  [no-video]        the task completes without any video URL
  [expired]         completed, `expires_at` already past; the video host answers 410 Gone
  [slow]            the whole lifecycle takes 10 times longer
  [url:top]         the video URL is at the top-level `url` instead of `result.data[0].url`
  [url:video_url]   ... at the top-level `video_url`
  [url:result.url]  ... at `result.url`
  [url:videos]      ... at `result.videos[0].url`
  [url:list]        ... at `result.data[0].url`, as a list of strings

With a fault rate, some answers are replaced by network and gateway trouble: 429, 500/503 with
JSON, a 502 HTML page, connections dropped before or after the request took effect, slow
answers and cut-off downloads (see `kling_cli.sandbox.faults`).
"""
