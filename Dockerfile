# One image for every Segments service; the command picks the service:
#   docker run IMAGE segments serve definition
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN python -m pip install --no-cache-dir --upgrade pip==25.3 \
 && python -m pip wheel --no-cache-dir -c requirements.lock --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 segments \
 && mkdir -p /exports /home/segments/var \
 && chown segments:segments /exports /home/segments/var
COPY --from=build /src/requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir -c /tmp/requirements.lock /wheels/*.whl \
 && rm -rf /wheels /tmp/requirements.lock
USER segments
WORKDIR /home/segments
ENV SEGMENTS_HOST=0.0.0.0 \
    SEGMENTS_DATA_DIR=/home/segments/var \
    PYTHONUNBUFFERED=1
# Health: a gRPC health check through the installed client library.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "services.healthcheck"]
ENTRYPOINT []
CMD ["segments", "serve", "all"]
