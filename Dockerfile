# The API image. The database is a separate PostGIS container (see docker-compose.yml).
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/territory
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY geodata ./geodata
COPY optimizer ./optimizer
COPY migrations ./migrations
COPY --from=assets /build/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
     /build/node_modules/swagger-ui-dist/swagger-ui.css \
     /build/node_modules/swagger-ui-dist/favicon-32x32.png \
     ./app/static/vendor/swagger-ui/
COPY --from=assets /build/node_modules/maplibre-gl/dist/maplibre-gl.js \
     /build/node_modules/maplibre-gl/dist/maplibre-gl.css \
     /build/node_modules/maplibre-gl/LICENSE.txt \
     ./app/static/vendor/maplibre/
RUN pip install --no-cache-dir .
RUN useradd --system --uid 10001 territory
USER territory
EXPOSE 8000
# DATABASE_URL must point at a PostGIS server; `serve` applies migrations and loads the demo when empty.
CMD ["territory", "serve", "--host", "0.0.0.0", "--port", "8000"]
