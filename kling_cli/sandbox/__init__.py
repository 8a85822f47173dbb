"""A local simulator of the ToAPIs video service: no key, no credits, standard library only.

It serves the API (`POST /v1/videos/generations`, `GET /v1/videos/generations/{id}`,
`POST /v1/uploads/images`, `GET /v1/balance` and `GET /balance`) on one port and, on a second
port, the "video host" that the task results point to. Any non-empty `Authorization: Bearer ...`
key is accepted, except the `revoked_keys` of `SandboxConfig` (401, as a missing key); the video
host needs none (as the real one, it must never receive the key).

A generation request comes in either form of API.md, each checked as the service documents it
(a 400 naming the bad param otherwise):

- the seed's form: `image_urls` (http(s) URLs); with images and no `<<<image_N>>>` in the prompt,
  the stored prompt gets `<<<image_1>>>` in front, as the service does;
- the official Omni form: `metadata.image_list` (`image_url`, optional `type` `first_frame` or
  `end_frame`, at most one of each, no end frame alone), `video_list` (at most 1 video:
  `video_url`, optional `refer_type` `base`|`feature`, `keep_original_sound` `yes`|`no`),
  `metadata.element_list` (each entry `{"url": http(s) URL, "type": "image"|"video", "role":
  WORD}` with type and role optional, or Kling's `{"element_id": positive integer}`) and `audio`
  (a boolean; `true` with a non-empty `video_list` is refused). At most 7 images and elements
  together (`metadata.image_list` + `metadata.element_list`), at most 4 with a reference video.
  Nothing is prepended to the prompt in this form, and `image_urls` with entries cannot come
  with `metadata.image_list`.

In both, `<<<image_N>>>`, `<<<video_N>>>` and `<<<element_N>>>` count from 1 in their own list
(images in `metadata.image_list` when it is given, else in `image_urls`); one beyond it is a 400.
And in both (API.md 1c): a prompt of at most 2,500 characters; `duration` a JSON integer in the
model's range (`rules.MODEL_DURATIONS`: 3 to 15 for `kling-v3-omni`, `kling-v3` and
`kling-3.0-turbo`, 3 to 10 for `kling-video-o1`, 5 or 10 for `kling-v2-6`; any whole number
above 0 for a model not named there), 5 when absent; `metadata.watermark` a boolean.

Business ids (API.md 1c): `client_business_id` (top level, or `metadata.client_business_id`, or
both when they agree; 1 to 64 letters, digits, `.`, `_`, `:` or `-`) is kept with the task and
echoed as the top-level `client_business_id` of its every answer, and
`GET /v1/videos/generations/{client_business_id}` answers as a GET by the task's id does (a task
id wins over a business id spelled the same). A second task with a business id already used is
made, not refused (the service does not document refusing it); a GET by that id answers the most
recent. `Sandbox.tasks_with_business_id` and `Sandbox.business_id_counts` show what each
business id made.

A task is `queued`, then `in_progress` (progress rising to 99), then `completed` with a short
real MP4 clip of the requested aspect ratio.

Prompt markers rehearse trouble (put them anywhere in the prompt; they combine):

  [fail]            the task ends `failed`, with error {"code": "content_policy", "message": ...}
  [fail-text]       the task ends `failed`, with `error` a plain string
  [no-video]        the task completes without any video URL
  [expired]         completed, `expires_at` already past; the video host answers 410 Gone
  [slow]            the whole lifecycle takes 10 times longer
  [stall]           the task runs, its progress stops at 99 and it stays `in_progress` forever
  [url:top]         the video URL is at the top-level `url` instead of `result.data[0].url`
  [url:video_url]   ... at the top-level `video_url`
  [url:result.url]  ... at `result.url`
  [url:videos]      ... at `result.videos[0].url`
  [url:list]        ... at `result.data[0].url`, as a list of strings
  [status:WORD]     the other status spellings of API.md section 2 (`state.STATUS_KINDS`):
                    a completed one (completed, succeed, succeeded, success) ends the task
                    completed, video and all, with status WORD; a failed one (failed,
                    cancelled, canceled, expired, error) ends it with status WORD and an
                    `error` object (a plain string with [fail-text]); a pending one (queued,
                    submitted, in_progress, processing, pending, running) or any other word
                    (e.g. `[status:weird_state]`) is the status while it runs, then it completes
  [lost]            the task is made (business id and all), but the submit's answer is lost:
                    the connection closes without any answer, as with the `drop_after` fault
  [lost-no-task]    the connection closes without any answer and no task is made (as the
                    `drop_before` fault, but every time)

`[lost]` and `[lost-no-task]` act only on a request that would make a task: a 400 or a
`max_running` 429 is answered as always. A lost answer's request is in `Sandbox.log` with
status None and fault None.

The balance: one account behind every key, starting at `SandboxConfig.balance` (100 by default).
Each created task spends `prices.task_cost`: 0.2 a second for std (1 for 5 s, 2 for 10 s), 1.5
times for pro, 1.5 times with a non-empty `video_list` ("Video"), 1.25 times with `audio: true`
("Sound"). `used_balance` grows, `remain_balance` shrinks and may go below 0 (tasks are never
refused for it). `SandboxConfig.unlimited`: `unlimited_quota: true`, `remain_balance: -1`. A key
in `SandboxConfig.unknown_keys` gets 200 `{"success": false, "message": "Failed to get token
info: record not found"}` from the balance (the other endpoints serve it).

With a fault rate, some answers are replaced by network and gateway trouble: 429, 500/503 with
JSON, a 502 HTML page, connections dropped before or after the request took effect, slow
answers and cut-off downloads (see `kling_cli.sandbox.faults`). With a latency
(`SandboxConfig.latency`, `kling sandbox --latency`), every answer waits that long before it
leaves, as from a service far away.
"""
