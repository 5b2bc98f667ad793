# tokenplans API server: `docker build -t tokenplans . && docker run -p 8000:8000 \
#   -e TOKENPLANS_JWT_SECRET=... -e TOKENPLANS_DATABASE_URL=postgresql+psycopg://... tokenplans`
# Without TOKENPLANS_DATABASE_URL it uses SQLite in the /data volume (one container only).
# It listens on $PORT (default 8000), and the health check probes that same port.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md CHANGELOG.md LICENSE ./
COPY src ./src
COPY adapters ./adapters
# prices: the genai-prices table, for TOKENPLANS_PRICES=genai-prices (offline data).
RUN pip install '.[server,mysql,postgres,prices]' && rm -rf /src

# Never run as root; /data holds the SQLite file when no database URL is given.
RUN useradd --create-home --uid 10001 tokenplans \
    && mkdir /data \
    && chown tokenplans:tokenplans /data
USER tokenplans
WORKDIR /data
VOLUME ["/data"]
ENV TOKENPLANS_DATABASE_URL=sqlite:////data/tokenplans.sqlite3

ENV PORT=8000
EXPOSE 8000
# A shell, so that the probe follows the port the server was given (`-e PORT=9000`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["sh", "-c", "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT:-8000}/api/health/ready', timeout=4)\""]

# `serve` upgrades the schema, then runs uvicorn; for more processes, override the command
# keeping the port: sh -c 'exec tokenplans serve --host 0.0.0.0 --port "$PORT" --workers 4'.
CMD ["sh", "-c", "exec tokenplans serve --host 0.0.0.0 --port \"${PORT:-8000}\""]
